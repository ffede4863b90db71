// Apache Avro's own Java library (org.apache.avro:avro) as the reference for Sluice's Avro codec
// (src/core/avro/): it reads object container files the way any Avro reader does and prints what it
// read as JSON, and writes container files for Sluice to read. Run through scripts/avro-reader.sh,
// which fetches the jars and compiles this file.
//
//   AvroRead read <file.avro>
//     {"avroVersion", "codec", "schema": <the file's schema as Java parsed it>, "canonical": <its Parsing
//      Canonical Form>, "fingerprint": <its CRC-64-AVRO fingerprint, unsigned decimal>,
//      "metadata": {key: UTF-8 text}, "metadataHex": {key: hex}, "blocks": <number of blocks>,
//      "records": [<record as JSON>…]}
//
//   AvroRead write <schema.json> <out.avro> [--codec null|deflate] [--records N] [--sync-interval BYTES]
//                  [--meta key=value]…
//     Writes N records (default 100) of values generated from the schema (deterministic: edge values of
//     every type, unions cycling through their branches, nesting bounded in depth) with Java's
//     DataFileWriter (codec deflate by default, level 6) and prints {"metadata": {…}, "records": […]},
//     the records as JSON.
//
//   AvroRead framed <schema.json> <records.hex>
//     Decodes records in Confluent's wire format (one per line, as hex: magic byte 0, the 4-byte schema id,
//     the Avro body) with the writer schema in schema.json (GenericDatumReader on the body after the 5-byte
//     header) and prints {"records": [{"id": <schema id>, "value": <record as JSON>}…]}.
//
//   AvroRead count <file.avro>
//     Reads every record (GenericDatumReader, reusing the record objects) and prints {"records", "ms"}:
//     a reference for the speed of Sluice's reader.
//
// Values as JSON, by the schema: null; boolean; int as a number; long as a string of its digits; float and
// double as numbers ("NaN", "Infinity", "-Infinity" as strings); bytes and fixed as lower-case hex; string;
// enum as its symbol; array; map as an object; record as an object in field order; a union as the value of
// its branch. Logical types: decimal (bytes or fixed) as BigDecimal.toPlainString(); uuid (string or fixed)
// as the canonical UUID text; duration as {"months", "days", "millis"}; dates, times and timestamps as their
// underlying int or long.
//
// Any error: its message on stderr, exit status 1; a wrong command line: usage on stderr, exit status 2.

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.apache.avro.LogicalType;
import org.apache.avro.LogicalTypes;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.file.CodecFactory;
import org.apache.avro.file.DataFileReader;
import org.apache.avro.file.DataFileWriter;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericEnumSymbol;
import org.apache.avro.generic.GenericFixed;
import org.apache.avro.generic.GenericRecord;

public class AvroRead {
  public static void main(String[] args) throws Exception {
    if (args.length < 2) usage();
    try {
      switch (args[0]) {
        case "read" -> read(new File(args[1]));
        case "write" -> write(args);
        case "count" -> count(new File(args[1]));
        case "framed" -> framed(args);
        default -> usage();
      }
    } catch (Exception e) {
      System.err.println("[avro-reader] " + e.getClass().getSimpleName() + ": " + e.getMessage());
      System.exit(1);
    }
  }

  static void usage() {
    System.err.println("usage: AvroRead read <file.avro> | write <schema.json> <out.avro> [--codec null|deflate] [--records N] [--sync-interval BYTES] [--meta key=value]… | count <file.avro> | framed <schema.json> <records.hex>");
    System.exit(2);
  }

  static JsonGenerator json() throws IOException {
    Writer out = new OutputStreamWriter(System.out, StandardCharsets.UTF_8);
    return new ObjectMapper().getFactory().createGenerator(out);
  }

  // ---------- read ----------

  static void read(File file) throws Exception {
    try (DataFileReader<Object> reader = new DataFileReader<>(file, new GenericDatumReader<>());
        JsonGenerator g = json()) {
      Schema schema = reader.getSchema();
      g.writeStartObject();
      g.writeStringField("avroVersion", Schema.class.getPackage().getImplementationVersion());
      g.writeStringField("codec", reader.getMetaString("avro.codec"));
      g.writeFieldName("schema");
      g.writeTree(new ObjectMapper().readTree(schema.toString()));
      g.writeStringField("canonical", SchemaNormalization.toParsingForm(schema));
      g.writeStringField("fingerprint", Long.toUnsignedString(SchemaNormalization.parsingFingerprint64(schema)));
      g.writeObjectFieldStart("metadata");
      for (String k : reader.getMetaKeys()) g.writeStringField(k, new String(reader.getMeta(k), StandardCharsets.UTF_8));
      g.writeEndObject();
      g.writeObjectFieldStart("metadataHex");
      for (String k : reader.getMetaKeys()) g.writeStringField(k, hex(reader.getMeta(k)));
      g.writeEndObject();
      g.writeArrayFieldStart("records");
      while (reader.hasNext()) value(g, reader.next(), schema);
      g.writeEndArray();
      g.writeNumberField("blocks", countBlocks(file));
      g.writeEndObject();
    }
  }

  // ---------- framed (Confluent wire format) ----------

  static void framed(String[] args) throws Exception {
    if (args.length != 3) usage();
    Schema schema = new Schema.Parser().parse(new File(args[1]));
    GenericDatumReader<Object> reader = new GenericDatumReader<>(schema);
    try (JsonGenerator g = json()) {
      g.writeStartObject();
      g.writeArrayFieldStart("records");
      for (String line : java.nio.file.Files.readAllLines(new File(args[2]).toPath())) {
        if (line.isBlank()) continue;
        byte[] b = java.util.HexFormat.of().parseHex(line.trim());
        if (b.length < 5 || b[0] != 0) throw new IOException("not in the Confluent wire format (magic byte 0 and a 4-byte id): " + line);
        int id = ByteBuffer.wrap(b, 1, 4).order(ByteOrder.BIG_ENDIAN).getInt();
        org.apache.avro.io.BinaryDecoder d = org.apache.avro.io.DecoderFactory.get().binaryDecoder(b, 5, b.length - 5, null);
        Object v = reader.read(null, d);
        if (!d.isEnd()) throw new IOException("bytes left over after the record with schema id " + id);
        g.writeStartObject();
        g.writeNumberField("id", id);
        g.writeFieldName("value");
        value(g, v, schema);
        g.writeEndObject();
      }
      g.writeEndArray();
      g.writeEndObject();
    }
  }

  /** The file's blocks, counted in a second pass that takes each block whole (DataFileStream.nextBlock). */
  static int countBlocks(File file) throws IOException {
    int blocks = 0;
    try (DataFileReader<Object> reader = new DataFileReader<>(file, new GenericDatumReader<>())) {
      while (reader.hasNext()) {
        reader.nextBlock();
        blocks++;
      }
    }
    return blocks;
  }

  static void count(File file) throws Exception {
    long t0 = System.nanoTime();
    long n = 0;
    try (DataFileReader<Object> reader = new DataFileReader<>(file, new GenericDatumReader<>())) {
      Object reuse = null;
      while (reader.hasNext()) {
        reuse = reader.next(reuse);
        n++;
      }
    }
    long ms = (System.nanoTime() - t0) / 1_000_000;
    try (JsonGenerator g = json()) {
      g.writeStartObject();
      g.writeNumberField("records", n);
      g.writeNumberField("ms", ms);
      g.writeEndObject();
    }
  }

  static String hex(byte[] b) {
    StringBuilder s = new StringBuilder(b.length * 2);
    for (byte x : b) s.append(Character.forDigit((x >> 4) & 0xf, 16)).append(Character.forDigit(x & 0xf, 16));
    return s.toString();
  }

  static byte[] bytesOf(ByteBuffer b) {
    ByteBuffer d = b.duplicate();
    byte[] out = new byte[d.remaining()];
    d.get(out);
    return out;
  }

  /** Writes a datum as JSON, by its schema (see the top of this file). */
  static void value(JsonGenerator g, Object v, Schema s) throws IOException {
    LogicalType lt = s.getLogicalType();
    String ltName = s.getProp("logicalType");
    switch (s.getType()) {
      case NULL -> g.writeNull();
      case BOOLEAN -> g.writeBoolean((Boolean) v);
      case INT -> g.writeNumber((Integer) v);
      case LONG -> g.writeString(Long.toString((Long) v));
      case FLOAT -> floating(g, (double) (Float) v);
      case DOUBLE -> floating(g, (Double) v);
      case STRING -> g.writeString(v.toString());
      case BYTES -> {
        byte[] b = bytesOf((ByteBuffer) v);
        if (lt instanceof LogicalTypes.Decimal d) g.writeString(new BigDecimal(new BigInteger(b.length == 0 ? new byte[] {0} : b), d.getScale()).toPlainString());
        else g.writeString(hex(b));
      }
      case FIXED -> {
        byte[] b = ((GenericFixed) v).bytes();
        if (lt instanceof LogicalTypes.Decimal d) g.writeString(new BigDecimal(new BigInteger(b.length == 0 ? new byte[] {0} : b), d.getScale()).toPlainString());
        else if ("uuid".equals(ltName) && b.length == 16) {
          ByteBuffer bb = ByteBuffer.wrap(b);
          g.writeString(new UUID(bb.getLong(), bb.getLong()).toString());
        } else if ("duration".equals(ltName) && b.length == 12) {
          ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
          g.writeStartObject();
          g.writeNumberField("months", Integer.toUnsignedLong(bb.getInt()));
          g.writeNumberField("days", Integer.toUnsignedLong(bb.getInt()));
          g.writeNumberField("millis", Integer.toUnsignedLong(bb.getInt()));
          g.writeEndObject();
        } else g.writeString(hex(b));
      }
      case ENUM -> g.writeString(((GenericEnumSymbol<?>) v).toString());
      case ARRAY -> {
        g.writeStartArray();
        for (Object x : (List<?>) v) value(g, x, s.getElementType());
        g.writeEndArray();
      }
      case MAP -> {
        g.writeStartObject();
        for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
          g.writeFieldName(e.getKey().toString());
          value(g, e.getValue(), s.getValueType());
        }
        g.writeEndObject();
      }
      case RECORD -> {
        GenericRecord r = (GenericRecord) v;
        g.writeStartObject();
        for (Schema.Field f : s.getFields()) {
          g.writeFieldName(f.name());
          value(g, r.get(f.pos()), f.schema());
        }
        g.writeEndObject();
      }
      case UNION -> value(g, v, s.getTypes().get(GenericData.get().resolveUnion(s, v)));
    }
  }

  static void floating(JsonGenerator g, double d) throws IOException {
    if (Double.isNaN(d)) g.writeString("NaN");
    else if (Double.isInfinite(d)) g.writeString(d > 0 ? "Infinity" : "-Infinity");
    else g.writeNumber(d);
  }

  // ---------- write ----------

  static void write(String[] args) throws Exception {
    if (args.length < 3) usage();
    Schema schema = new Schema.Parser().parse(new File(args[1]));
    File out = new File(args[2]);
    String codec = "deflate";
    int records = 100;
    int syncInterval = 0;
    Map<String, String> meta = new LinkedHashMap<>();
    for (int i = 3; i < args.length; i++) {
      switch (args[i]) {
        case "--codec" -> codec = args[++i];
        case "--records" -> records = Integer.parseInt(args[++i]);
        case "--sync-interval" -> syncInterval = Integer.parseInt(args[++i]);
        case "--meta" -> {
          String kv = args[++i];
          int eq = kv.indexOf('=');
          if (eq < 0) usage();
          meta.put(kv.substring(0, eq), kv.substring(eq + 1));
        }
        default -> usage();
      }
    }
    List<Object> data = new ArrayList<>();
    Gen gen = new Gen();
    for (int i = 0; i < records; i++) data.add(gen.value(schema, 0));
    try (DataFileWriter<Object> w = new DataFileWriter<>(new GenericDatumWriter<>(schema))) {
      w.setCodec(codec.equals("deflate") ? CodecFactory.deflateCodec(6) : CodecFactory.fromString(codec));
      if (syncInterval > 0) w.setSyncInterval(syncInterval);
      for (Map.Entry<String, String> e : meta.entrySet()) w.setMeta(e.getKey(), e.getValue());
      w.create(schema, out);
      for (Object d : data) w.append(d);
    }
    try (JsonGenerator g = json()) {
      g.writeStartObject();
      g.writeObjectFieldStart("metadata");
      for (Map.Entry<String, String> e : meta.entrySet()) g.writeStringField(e.getKey(), e.getValue());
      g.writeEndObject();
      g.writeArrayFieldStart("records");
      for (Object d : data) value(g, d, schema);
      g.writeEndArray();
      g.writeEndObject();
    }
  }

  /** Deterministic values of any schema: each call takes the next of a list of edge values for its type. */
  static final class Gen {
    static final int MAX_DEPTH = 4;
    long k = 0;

    static final int[] INTS = {0, -1, 1, Integer.MIN_VALUE, Integer.MAX_VALUE, 63, -64, 64, -65, 8191, -8192, 1 << 20, 19_000, -719_162};
    static final long[] LONGS = {
      0, -1, 1, Long.MIN_VALUE, Long.MAX_VALUE, 1L << 53, (1L << 53) + 1, -(1L << 53) - 1, (1L << 53) - 1, -(1L << 53) + 1,
      Integer.MAX_VALUE, (long) Integer.MAX_VALUE + 1, Integer.MIN_VALUE, (long) Integer.MIN_VALUE - 1, 1L << 62, -(1L << 62),
      1_700_000_000_123_456L, 6_123_456_789_012_345_678L, 1L << 35, -(1L << 49), 1L << 56};
    static final float[] FLOATS = {0f, -0f, 1.5f, 0.1f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.MIN_VALUE, Float.MAX_VALUE, -3.4e-12f};
    static final double[] DOUBLES = {0d, -0d, 1.5, 0.1, Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, Double.MIN_VALUE, Double.MAX_VALUE, -1.0e300, 123456789.123456789};
    static final String[] STRINGS = {"", "a", "héllo wörld", "日本語のテキスト", "emoji 😀 and \u00e9", "nul \u0000 and \n newline", "x".repeat(300), "quote \" back \\ slash", "s3://bucket/data/00000-1-a1b2c3d4.parquet"};

    long next() {
      return k++;
    }

    Object value(Schema s, int depth) {
      long i = next();
      LogicalType lt = s.getLogicalType();
      String ltName = s.getProp("logicalType");
      switch (s.getType()) {
        case NULL:
          return null;
        case BOOLEAN:
          return i % 2 == 0;
        case INT:
          if (lt != null && ltName.equals("time-millis")) return (int) Math.floorMod(i * 7_919_000L, 86_400_000L);
          return INTS[(int) (i % INTS.length)];
        case LONG:
          if (lt != null && ltName.equals("time-micros")) return Math.floorMod(i * 7_919_000_123L, 86_400_000_000L);
          return LONGS[(int) (i % LONGS.length)];
        case FLOAT:
          return FLOATS[(int) (i % FLOATS.length)];
        case DOUBLE:
          return DOUBLES[(int) (i % DOUBLES.length)];
        case STRING:
          if ("uuid".equals(ltName)) return uuid(i).toString();
          return STRINGS[(int) (i % STRINGS.length)];
        case BYTES:
          if (lt instanceof LogicalTypes.Decimal d) return ByteBuffer.wrap(unscaled(d, i).toByteArray());
          return ByteBuffer.wrap(bytes(i, (int) (i % 40)));
        case FIXED: {
          byte[] b;
          if (lt instanceof LogicalTypes.Decimal d) {
            byte[] u = unscaled(d, i).toByteArray();
            b = new byte[s.getFixedSize()];
            byte pad = (byte) (u[0] < 0 ? 0xff : 0);
            for (int j = 0; j < b.length - u.length; j++) b[j] = pad;
            System.arraycopy(u, 0, b, b.length - u.length, u.length);
          } else if ("uuid".equals(ltName) && s.getFixedSize() == 16) {
            UUID u = uuid(i);
            b = ByteBuffer.allocate(16).putLong(u.getMostSignificantBits()).putLong(u.getLeastSignificantBits()).array();
          } else if ("duration".equals(ltName) && s.getFixedSize() == 12) {
            b = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putInt((int) (i % 13)).putInt((int) (i * 31 % 400)).putInt(i % 3 == 0 ? -1 : (int) (i * 1000)).array();
          } else b = bytes(i, s.getFixedSize());
          return new GenericData.Fixed(s, b);
        }
        case ENUM:
          return new GenericData.EnumSymbol(s, s.getEnumSymbols().get((int) (i % s.getEnumSymbols().size())));
        case ARRAY: {
          int n = depth >= MAX_DEPTH ? 0 : (int) (i % 4);
          List<Object> a = new GenericData.Array<>(n, s);
          for (int j = 0; j < n; j++) a.add(value(s.getElementType(), depth + 1));
          return a;
        }
        case MAP: {
          int n = depth >= MAX_DEPTH ? 0 : (int) (i % 4);
          Map<String, Object> m = new LinkedHashMap<>();
          for (int j = 0; j < n; j++) m.put(j == 2 ? "__proto__" : "k" + j + "é", value(s.getValueType(), depth + 1));
          return m;
        }
        case RECORD: {
          GenericData.Record r = new GenericData.Record(s);
          for (Schema.Field f : s.getFields()) r.put(f.pos(), value(f.schema(), depth + 1));
          return r;
        }
        case UNION: {
          List<Schema> types = s.getTypes();
          int nullAt = -1;
          for (int j = 0; j < types.size(); j++) if (types.get(j).getType() == Schema.Type.NULL) nullAt = j;
          int b = depth >= MAX_DEPTH && nullAt >= 0 ? nullAt : (int) (i % types.size());
          return value(types.get(b), depth + 1);
        }
        default:
          throw new IllegalArgumentException("no values for " + s);
      }
    }

    static UUID uuid(long i) {
      return UUID.nameUUIDFromBytes(("sluice-" + i).getBytes(StandardCharsets.UTF_8));
    }

    static byte[] bytes(long i, int n) {
      byte[] b = new byte[n];
      for (int j = 0; j < n; j++) b[j] = (byte) (i * 31 + j * 17);
      return b;
    }

    /** An unscaled decimal value within the type's precision: zero, ±1, the largest, or digits from i. */
    static BigInteger unscaled(LogicalTypes.Decimal d, long i) {
      BigInteger max = BigInteger.TEN.pow(d.getPrecision()).subtract(BigInteger.ONE);
      return switch ((int) (i % 6)) {
        case 0 -> BigInteger.ZERO;
        case 1 -> BigInteger.ONE;
        case 2 -> BigInteger.ONE.negate();
        case 3 -> max;
        case 4 -> max.negate();
        default -> BigInteger.valueOf(i * 7_919).mod(max.add(BigInteger.ONE)).multiply(i % 2 == 0 ? BigInteger.ONE : BigInteger.ONE.negate());
      };
    }
  }
}
