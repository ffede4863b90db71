// A second reference reader of Delta Lake tables for Sluice's tests, on Delta Spark (io.delta:delta-spark_2.13) in
// Spark local mode: it reads what Delta Kernel cannot, a table's Change Data Feed, and a table's snapshot so a
// test can cross-check Kernel (scripts/java/DeltaRead.java) and Spark. Run through scripts/delta-spark.sh, which
// fetches the jars, compiles this file and starts the JVM with the flags Spark needs.
//
//   DeltaSparkRead cdf <tablePath> --from N [--to M]
//     {"schema": [{"name", "type", "nullable"}…], "rows": [{column: value…, "_change_type": "insert",
//      "_commit_version": "3", "_commit_timestamp": "1767225600000000"}…]}
//     The change data feed of commits N..M (M: the latest), as Spark reads it
//     (spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", N)
//     .option("endingVersion", M).load(path)). The schema is the table's columns, then _change_type (string:
//     insert, update_preimage, update_postimage, delete), _commit_version (long) and _commit_timestamp
//     (timestamp).
//   DeltaSparkRead snapshot <tablePath> [--version N]
//     {"version": N, "schema": […], "partitionColumns": […], "rows": […]}: DeltaRead's shape. The schema and the
//     partition columns are the snapshot's metadata (with the nullability the table declares, as Kernel reports
//     it); the rows are spark.read.format("delta").option("versionAsOf", N).load(path).
//   DeltaSparkRead sql <warehouseDir> <statement>…
//     {"results": [{"statement": "…", "schema": […], "rows": […]}…]}: runs the statements in order in one session
//     whose spark.sql.warehouse.dir is warehouseDir, after registering each table directory already there (a
//     directory holding a _delta_log) under its directory name. Tables created by name are managed tables in
//     warehouseDir, so the next call finds them again; delta.`/a/path` names a table by its path.
//
// Types are named as Delta's schema names them (long, decimal(10,2), timestamp_ntz, …); nested ones as
// struct<a:long,b:string>, array<long>, map<string,long>. Values exactly as DeltaRead renders them: null;
// boolean; byte/short/int as numbers; long as a string of its digits; float/double as numbers ("NaN",
// "Infinity", "-Infinity" as strings); decimal as BigDecimal.toPlainString(); string; binary as base64; date as
// YYYY-MM-DD; timestamp and timestamp_ntz as a string of the microseconds since the epoch; struct as an object;
// array as an array; map as an object of key → value (a key that is not a string is written as its JSON text).
//
// Rows are sorted, so the output is the same from run to run: cdf by _commit_version, then by _change_type in the
// order insert, update_preimage, update_postimage, delete, then by the table's columns in schema order (nulls
// first; numbers, strings, dates and times by value; anything else by its JSON text); snapshot by the columns.
// The sql mode keeps the order the statement's result has.
//
// Any error: its message on stderr, exit status 1; a wrong command line: usage on stderr, exit status 2.

import java.io.BufferedWriter;
import java.io.File;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

import org.apache.spark.sql.DataFrameReader;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.delta.DeltaLog;
import org.apache.spark.sql.delta.Snapshot;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.BinaryType;
import org.apache.spark.sql.types.BooleanType;
import org.apache.spark.sql.types.ByteType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DateType;
import org.apache.spark.sql.types.DecimalType;
import org.apache.spark.sql.types.DoubleType;
import org.apache.spark.sql.types.FloatType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.MapType;
import org.apache.spark.sql.types.NullType;
import org.apache.spark.sql.types.ShortType;
import org.apache.spark.sql.types.StringType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.types.TimestampNTZType;
import org.apache.spark.sql.types.TimestampType;

import scala.jdk.javaapi.CollectionConverters;

public final class DeltaSparkRead {
  private static final String USAGE = "usage: DeltaSparkRead cdf <tablePath> --from N [--to M]"
      + " | snapshot <tablePath> [--version N] | sql <warehouseDir> <statement>...";
  private static final List<String> CHANGE_TYPES = List.of("insert", "update_preimage", "update_postimage", "delete");
  private static final String CHANGE_TYPE = "_change_type";
  private static final String COMMIT_VERSION = "_commit_version";

  public static void main(String[] args) {
    if (args.length == 0) usage("no mode");
    String mode = args[0];
    String path = null;
    Long from = null;
    Long to = null;
    Long version = null;
    List<String> statements = new ArrayList<>();
    if (mode.equals("sql")) {
      if (args.length < 3) usage("sql wants a warehouse directory and at least one statement");
      path = args[1];
      statements.addAll(Arrays.asList(args).subList(2, args.length));
    } else if (mode.equals("cdf") || mode.equals("snapshot")) {
      for (int i = 1; i < args.length; i++) {
        String a = args[i];
        if (mode.equals("cdf") && a.equals("--from") && i + 1 < args.length) {
          from = number(a, args[++i]);
        } else if (mode.equals("cdf") && a.equals("--to") && i + 1 < args.length) {
          to = number(a, args[++i]);
        } else if (mode.equals("snapshot") && a.equals("--version") && i + 1 < args.length) {
          version = number(a, args[++i]);
        } else if (a.startsWith("--") || path != null) {
          usage("unexpected argument " + a);
        } else {
          path = a;
        }
      }
      if (path == null) usage("no table path");
      if (mode.equals("cdf") && from == null) usage("cdf wants --from N");
      if (from != null && to != null && to < from) usage("--to " + to + " is before --from " + from);
    } else {
      usage("unknown mode " + mode);
    }

    StringBuilder out = new StringBuilder(1 << 16);
    try {
      SparkSession spark = session(mode.equals("sql") ? new File(path).getAbsolutePath() : null);
      if (mode.equals("cdf")) cdf(spark, path, from, to, out);
      else if (mode.equals("snapshot")) snapshot(spark, path, version, out);
      else sql(spark, path, statements, out);
      Writer w = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8));
      w.append(out).append('\n').flush();
    } catch (Throwable t) {
      fail(message(t));
    }
    // Everything is written (a commit is durable when its statement returns): no need for Spark's shutdown hooks
    // (they stop the context and delete scratch files, which scripts/delta-spark.sh removes anyway). A normal exit
    // when asked (-DDeltaSparkRead.exit=true): the JVM writes a class-data sharing archive only then.
    System.err.flush();
    if (Boolean.getBoolean("DeltaSparkRead.exit")) System.exit(0);
    Runtime.getRuntime().halt(0);
  }

  private static long number(String option, String text) {
    long n = 0;
    try {
      n = Long.parseLong(text);
    } catch (NumberFormatException e) {
      usage(option + " wants a number, not " + text);
    }
    if (n < 0) usage(option + " wants a version >= 0");
    return n;
  }

  private static void usage(String why) {
    System.err.println("DeltaSparkRead: " + why);
    System.err.println(USAGE);
    System.err.flush();
    Runtime.getRuntime().halt(2);
  }

  private static void fail(String msg) {
    System.err.println("DeltaSparkRead: " + msg);
    System.err.flush();
    Runtime.getRuntime().halt(1);
  }

  // The exception's class and message, and those of its causes (when they say something new), on one line;
  // each message cut at 600 characters.
  private static String message(Throwable t) {
    StringBuilder sb = new StringBuilder();
    String last = "";
    int depth = 0;
    for (Throwable c = t; c != null && depth < 6; c = c.getCause() == c ? null : c.getCause(), depth++) {
      String m = c.getMessage() == null ? "" : c.getMessage().strip();
      if (depth > 0 && !m.isEmpty() && last.contains(m.length() > 200 ? m.substring(0, 200) : m)) continue;
      if (sb.length() > 0) sb.append(" <- caused by: ");
      sb.append(c.getClass().getName());
      if (!m.isEmpty()) sb.append(": ").append(m.length() > 600 ? m.substring(0, 600) + "..." : m);
      last = m;
    }
    return sb.toString().replaceAll("\\s*\\n\\s*", " ");
  }

  // Local mode, one core, nothing listening beyond the loopback, no UI, no Hive, UTC; java.time values in rows.
  private static SparkSession session(String warehouse) {
    String tmp = System.getProperty("java.io.tmpdir");
    return SparkSession.builder()
        .appName("sluice-delta-spark-read")
        .master("local[1]")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.local.dir", tmp)
        .config("spark.sql.catalogImplementation", "in-memory")
        .config("spark.sql.warehouse.dir", warehouse != null ? warehouse : new File(tmp, "warehouse").getAbsolutePath())
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.datetime.java8API.enabled", "true")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.default.parallelism", "1")
        .config("spark.sql.adaptive.enabled", "false")
        // Whole-stage code generation compiles a class per query with Janino: seconds for a few rows. Expressions
        // are still code-generated; whole-stage fusion only changes how operators are chained.
        .config("spark.sql.codegen.wholeStage", "false")
        .config("spark.databricks.delta.snapshotPartitions", "1")
        .getOrCreate();
  }

  private static void cdf(SparkSession spark, String path, long from, Long to, StringBuilder out) {
    DataFrameReader reader = spark.read().format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", from);
    if (to != null) reader = reader.option("endingVersion", to);
    Dataset<Row> df = reader.load(path);
    StructType schema = df.schema();
    List<Row> rows = new ArrayList<>(df.collectAsList());
    int versionAt = schema.fieldIndex(COMMIT_VERSION);
    int typeAt = schema.fieldIndex(CHANGE_TYPE);
    List<Integer> data = new ArrayList<>();
    for (int i = 0; i < schema.length(); i++) {
      String name = schema.fields()[i].name();
      if (!name.equals(CHANGE_TYPE) && !name.equals(COMMIT_VERSION) && !name.equals("_commit_timestamp")) data.add(i);
    }
    Comparator<Row> order = Comparator.<Row>comparingLong(r -> r.getLong(versionAt))
        .thenComparingInt(r -> CHANGE_TYPES.indexOf(r.getString(typeAt)))
        .thenComparing(columns(schema, data));
    rows.sort(order);

    out.append("{\"schema\":");
    schema(out, schema);
    out.append(",\"rows\":");
    rows(out, schema, rows);
    out.append('}');
  }

  private static void snapshot(SparkSession spark, String path, Long version, StringBuilder out) throws Exception {
    DeltaLog log = DeltaLog.forTable(spark, path);
    Snapshot snapshot = version == null ? (Snapshot) withDefaults(log, "update") : (Snapshot) withDefaults(log, "getSnapshotAt", version);
    if (snapshot.version() < 0) throw new IllegalArgumentException("no Delta table at " + path);
    Dataset<Row> df = spark.read().format("delta").option("versionAsOf", snapshot.version()).load(path);
    StructType schema = df.schema();
    List<Row> rows = new ArrayList<>(df.collectAsList());
    List<Integer> all = new ArrayList<>();
    for (int i = 0; i < schema.length(); i++) all.add(i);
    rows.sort(columns(schema, all));

    out.append("{\"version\":").append(snapshot.version()).append(",\"schema\":");
    // The schema the snapshot declares (what Kernel reports too); the same columns, in the same order, as the read.
    schema(out, snapshot.metadata().schema());
    out.append(",\"partitionColumns\":[");
    List<String> partitions = CollectionConverters.asJava(snapshot.metadata().partitionColumns());
    for (int i = 0; i < partitions.size(); i++) {
      if (i > 0) out.append(',');
      string(out, partitions.get(i));
    }
    out.append("],\"rows\":");
    rows(out, schema, rows);
    out.append('}');
  }

  // target.name(given…, and Scala's default arguments for the rest): DeltaLog's update() and getSnapshotAt(version)
  // take optional arguments whose number changes between Delta releases (4.0: 3, 4.2: 4), so the overload is chosen
  // here, the one whose parameters after the given ones all have defaults (Scala's name$default$N methods).
  private static Object withDefaults(Object target, String name, Object... given) throws Exception {
    Class<?> c = target.getClass();
    for (Method m : c.getMethods()) {
      Class<?>[] params = m.getParameterTypes();
      if (!m.getName().equals(name) || params.length < given.length) continue;
      Object[] args = Arrays.copyOf(given, params.length);
      boolean ok = true;
      for (int i = given.length; i < params.length && ok; i++) {
        try {
          Method d = c.getMethod(name + "$default$" + (i + 1));
          ok = params[i].isAssignableFrom(d.getReturnType());
          if (ok) args[i] = d.invoke(target);
        } catch (NoSuchMethodException e) {
          ok = false;
        }
      }
      if (!ok) continue;
      try {
        return m.invoke(target, args);
      } catch (InvocationTargetException e) {
        throw e.getCause() instanceof Exception ? (Exception) e.getCause() : e;
      }
    }
    throw new NoSuchMethodException(c.getName() + "." + name + " with defaults for all but " + given.length + " argument(s)");
  }

  private static void sql(SparkSession spark, String warehouse, List<String> statements, StringBuilder out) {
    File dir = new File(warehouse);
    File[] tables = dir.listFiles(f -> f.isDirectory() && new File(f, "_delta_log").isDirectory());
    if (tables != null) {
      Arrays.sort(tables);
      for (File t : tables) {
        spark.sql("CREATE TABLE IF NOT EXISTS " + quoteIdentifier(t.getName()) + " USING delta LOCATION '"
            + t.getAbsolutePath().replace("\\", "\\\\").replace("'", "\\'") + "'");
      }
    }
    out.append("{\"results\":[");
    for (int s = 0; s < statements.size(); s++) {
      String statement = statements.get(s);
      Dataset<Row> df;
      List<Row> rows;
      try {
        df = spark.sql(statement);
        rows = df.collectAsList();
      } catch (Exception e) {
        // (Scala declares no checked exceptions: Spark's AnalysisException is one, and comes through here too.)
        throw new IllegalStateException("statement " + (s + 1) + " failed: " + statement, e);
      }
      if (s > 0) out.append(',');
      out.append("{\"statement\":");
      string(out, statement);
      out.append(",\"schema\":");
      schema(out, df.schema());
      out.append(",\"rows\":");
      rows(out, df.schema(), rows);
      out.append('}');
    }
    out.append("]}");
  }

  private static String quoteIdentifier(String name) {
    return "`" + name.replace("`", "``") + "`";
  }

  private static void schema(StringBuilder out, StructType schema) {
    out.append('[');
    StructField[] fields = schema.fields();
    for (int i = 0; i < fields.length; i++) {
      if (i > 0) out.append(',');
      out.append("{\"name\":");
      string(out, fields[i].name());
      out.append(",\"type\":");
      string(out, typeName(fields[i].dataType()));
      out.append(",\"nullable\":").append(fields[i].nullable()).append('}');
    }
    out.append(']');
  }

  private static void rows(StringBuilder out, StructType schema, List<Row> rows) {
    StructField[] fields = schema.fields();
    out.append('[');
    for (int r = 0; r < rows.size(); r++) {
      if (r > 0) out.append(',');
      Row row = rows.get(r);
      out.append('{');
      for (int c = 0; c < fields.length; c++) {
        if (c > 0) out.append(',');
        string(out, fields[c].name());
        out.append(':');
        value(out, row.get(c), fields[c].dataType());
      }
      out.append('}');
    }
    out.append(']');
  }

  // Rows by the given columns in turn.
  private static Comparator<Row> columns(StructType schema, List<Integer> indexes) {
    StructField[] fields = schema.fields();
    return (a, b) -> {
      for (int i : indexes) {
        int c = compare(a.get(i), b.get(i), fields[i].dataType());
        if (c != 0) return c;
      }
      return 0;
    };
  }

  // Nulls first; numbers, text, booleans, dates, times and bytes by value; anything else by its JSON text.
  private static int compare(Object a, Object b, DataType t) {
    if (a == null || b == null) return a == null ? (b == null ? 0 : -1) : 1;
    if (a instanceof Float || a instanceof Double) return Double.compare(((Number) a).doubleValue(), ((Number) b).doubleValue());
    if (a instanceof Byte || a instanceof Short || a instanceof Integer || a instanceof Long) {
      return Long.compare(((Number) a).longValue(), ((Number) b).longValue());
    }
    if (a instanceof BigDecimal) return ((BigDecimal) a).compareTo((BigDecimal) b);
    if (a instanceof String) return ((String) a).compareTo((String) b);
    if (a instanceof Boolean) return Boolean.compare((Boolean) a, (Boolean) b);
    if (a instanceof LocalDate) return ((LocalDate) a).compareTo((LocalDate) b);
    if (a instanceof Instant) return ((Instant) a).compareTo((Instant) b);
    if (a instanceof LocalDateTime) return ((LocalDateTime) a).compareTo((LocalDateTime) b);
    if (a instanceof byte[]) return Arrays.compareUnsigned((byte[]) a, (byte[]) b);
    StringBuilder x = new StringBuilder();
    StringBuilder y = new StringBuilder();
    value(x, a, t);
    value(y, b, t);
    return x.toString().compareTo(y.toString());
  }

  // Delta's own names for the types (as in a table's schemaString), as DeltaRead names Kernel's.
  static String typeName(DataType t) {
    if (t instanceof BooleanType) return "boolean";
    if (t instanceof ByteType) return "byte";
    if (t instanceof ShortType) return "short";
    if (t instanceof IntegerType) return "integer";
    if (t instanceof LongType) return "long";
    if (t instanceof FloatType) return "float";
    if (t instanceof DoubleType) return "double";
    if (t instanceof StringType) return "string";
    if (t instanceof BinaryType) return "binary";
    if (t instanceof DateType) return "date";
    if (t instanceof TimestampType) return "timestamp";
    if (t instanceof TimestampNTZType) return "timestamp_ntz";
    if (t instanceof DecimalType) {
      DecimalType d = (DecimalType) t;
      return "decimal(" + d.precision() + "," + d.scale() + ")";
    }
    if (t instanceof ArrayType) return "array<" + typeName(((ArrayType) t).elementType()) + ">";
    if (t instanceof MapType) {
      MapType m = (MapType) t;
      return "map<" + typeName(m.keyType()) + "," + typeName(m.valueType()) + ">";
    }
    if (t instanceof StructType) {
      StructField[] fields = ((StructType) t).fields();
      StringBuilder sb = new StringBuilder("struct<");
      for (int i = 0; i < fields.length; i++) {
        if (i > 0) sb.append(',');
        sb.append(fields[i].name()).append(':').append(typeName(fields[i].dataType()));
      }
      return sb.append('>').toString();
    }
    return t.typeName();
  }

  // Microseconds since the epoch (floor, as Delta stores them).
  private static long micros(long seconds, int nanos) {
    return Math.addExact(Math.multiplyExact(seconds, 1_000_000L), nanos / 1000);
  }

  // A value of a Row (external types with spark.sql.datetime.java8API.enabled) as JSON, by the rules at the top.
  @SuppressWarnings("unchecked")
  static void value(StringBuilder out, Object v, DataType t) {
    if (v == null || t instanceof NullType) {
      out.append("null");
    } else if (t instanceof BooleanType) {
      out.append((boolean) (Boolean) v);
    } else if (t instanceof ByteType || t instanceof ShortType || t instanceof IntegerType) {
      out.append(((Number) v).intValue());
    } else if (t instanceof LongType) {
      out.append('"').append((long) (Long) v).append('"');
    } else if (t instanceof FloatType) {
      float f = (Float) v;
      floating(out, f, Float.toString(f));
    } else if (t instanceof DoubleType) {
      double d = (Double) v;
      floating(out, d, Double.toString(d));
    } else if (t instanceof DecimalType) {
      string(out, ((BigDecimal) v).toPlainString());
    } else if (t instanceof StringType) {
      string(out, v.toString());
    } else if (t instanceof BinaryType) {
      string(out, Base64.getEncoder().encodeToString((byte[]) v));
    } else if (t instanceof DateType) {
      string(out, v instanceof java.sql.Date ? ((java.sql.Date) v).toLocalDate().toString() : v.toString());
    } else if (t instanceof TimestampType) {
      Instant i = v instanceof java.sql.Timestamp ? ((java.sql.Timestamp) v).toInstant() : (Instant) v;
      out.append('"').append(micros(i.getEpochSecond(), i.getNano())).append('"');
    } else if (t instanceof TimestampNTZType) {
      LocalDateTime l = (LocalDateTime) v;
      out.append('"').append(micros(l.toEpochSecond(ZoneOffset.UTC), l.getNano())).append('"');
    } else if (t instanceof StructType) {
      StructField[] fields = ((StructType) t).fields();
      Row r = (Row) v;
      out.append('{');
      for (int c = 0; c < fields.length; c++) {
        if (c > 0) out.append(',');
        string(out, fields[c].name());
        out.append(':');
        value(out, r.get(c), fields[c].dataType());
      }
      out.append('}');
    } else if (t instanceof ArrayType) {
      DataType element = ((ArrayType) t).elementType();
      Iterable<Object> items = v instanceof scala.collection.Seq
          ? CollectionConverters.asJava((scala.collection.Seq<Object>) v) : (List<Object>) v;
      out.append('[');
      boolean first = true;
      for (Object item : items) {
        if (!first) out.append(',');
        first = false;
        value(out, item, element);
      }
      out.append(']');
    } else if (t instanceof MapType) {
      MapType m = (MapType) t;
      Map<Object, Object> map = v instanceof scala.collection.Map
          ? CollectionConverters.asJava((scala.collection.Map<Object, Object>) v) : (Map<Object, Object>) v;
      out.append('{');
      boolean first = true;
      for (Map.Entry<Object, Object> e : map.entrySet()) {
        if (!first) out.append(',');
        first = false;
        StringBuilder key = new StringBuilder();
        value(key, e.getKey(), m.keyType());
        if (key.length() > 0 && key.charAt(0) == '"') out.append(key);
        else string(out, key.toString());
        out.append(':');
        value(out, e.getValue(), m.valueType());
      }
      out.append('}');
    } else {
      throw new UnsupportedOperationException("no JSON rendering for a value of type " + t.typeName());
    }
  }

  // Java's shortest repr that reads back to the same float/double; ".0" endings and exponents are valid JSON.
  private static void floating(StringBuilder out, double d, String text) {
    if (Double.isNaN(d)) out.append("\"NaN\"");
    else if (d == Double.POSITIVE_INFINITY) out.append("\"Infinity\"");
    else if (d == Double.NEGATIVE_INFINITY) out.append("\"-Infinity\"");
    else out.append(text.replace("E", "e"));
  }

  static void string(StringBuilder out, String s) {
    out.append('"');
    for (int k = 0; k < s.length(); k++) {
      char ch = s.charAt(k);
      switch (ch) {
        case '"': out.append("\\\""); break;
        case '\\': out.append("\\\\"); break;
        case '\n': out.append("\\n"); break;
        case '\r': out.append("\\r"); break;
        case '\t': out.append("\\t"); break;
        case '\b': out.append("\\b"); break;
        case '\f': out.append("\\f"); break;
        default:
          // Control characters, lone surrogates and line/paragraph separators escaped, so the output is valid
          // UTF-8 and safe to embed anywhere.
          if (ch < 0x20 || ch == 0x2028 || ch == 0x2029
              || (Character.isHighSurrogate(ch) && (k + 1 >= s.length() || !Character.isLowSurrogate(s.charAt(k + 1))))
              || (Character.isLowSurrogate(ch) && (k == 0 || !Character.isHighSurrogate(s.charAt(k - 1))))) {
            out.append(String.format("\\u%04x", (int) ch));
          } else {
            out.append(ch);
          }
      }
    }
    out.append('"');
  }
}
