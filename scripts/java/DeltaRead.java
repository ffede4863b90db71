// A reference reader of Delta Lake tables for Sluice's tests: Delta Kernel (io.delta:delta-kernel-api and
// delta-kernel-defaults, the default engine over the local file system) reads a table the way any Kernel-based
// reader would, and this program prints what it read as one JSON document on stdout, with exact values so a
// test can compare them with the source database. Run through scripts/delta-reader.sh, which fetches the
// jars and compiles this file.
//
//   DeltaRead <tablePath> [--version N]
//
// {"version": <snapshot version>, "schema": [{"name", "type", "nullable"}…], "partitionColumns": […],
//  "rows": [{column: value…}…]}
//
// Types are named as Delta's schema names them (long, decimal(10,2), timestamp_ntz, …); nested ones as
// struct<a:long,b:string>, array<long>, map<string,long>. Values: null; boolean; byte/short/int as numbers;
// long as a string of its digits; float/double as numbers ("NaN", "Infinity", "-Infinity" as strings);
// decimal as BigDecimal.toPlainString(); string; binary as base64; date as YYYY-MM-DD; timestamp and
// timestamp_ntz as a string of the microseconds since the epoch; struct as an object; array as an array; map
// as an object of key → value (a key that is not a string is written as its JSON text, e.g. "5" or "true").
// Rows come in the order Kernel returns them (scan files, then rows within each file): tests should sort.
//
// Kernel has no public reader of a table's Change Data Feed (there is no table-changes API in
// delta-kernel-api): --changes is refused with that message rather than approximated here.
//
// Any error: its message on stderr, exit status 1; a wrong command line: usage on stderr, exit status 2.

import io.delta.kernel.Scan;
import io.delta.kernel.Snapshot;
import io.delta.kernel.SnapshotBuilder;
import io.delta.kernel.TableManager;
import io.delta.kernel.data.ArrayValue;
import io.delta.kernel.data.ColumnVector;
import io.delta.kernel.data.ColumnarBatch;
import io.delta.kernel.data.FilteredColumnarBatch;
import io.delta.kernel.data.MapValue;
import io.delta.kernel.data.Row;
import io.delta.kernel.defaults.engine.DefaultEngine;
import io.delta.kernel.engine.Engine;
import io.delta.kernel.engine.FileReadResult;
import io.delta.kernel.internal.InternalScanFileUtils;
import io.delta.kernel.internal.data.ScanStateRow;
import io.delta.kernel.types.ArrayType;
import io.delta.kernel.types.BinaryType;
import io.delta.kernel.types.BooleanType;
import io.delta.kernel.types.ByteType;
import io.delta.kernel.types.DataType;
import io.delta.kernel.types.DateType;
import io.delta.kernel.types.DecimalType;
import io.delta.kernel.types.DoubleType;
import io.delta.kernel.types.FloatType;
import io.delta.kernel.types.IntegerType;
import io.delta.kernel.types.LongType;
import io.delta.kernel.types.MapType;
import io.delta.kernel.types.ShortType;
import io.delta.kernel.types.StringType;
import io.delta.kernel.types.StructField;
import io.delta.kernel.types.StructType;
import io.delta.kernel.types.TimestampNTZType;
import io.delta.kernel.types.TimestampType;
import io.delta.kernel.utils.CloseableIterator;
import io.delta.kernel.utils.FileStatus;

import java.io.BufferedWriter;
import java.io.OutputStreamWriter;
import java.io.PrintStream;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.time.LocalDate;
import java.util.Base64;
import java.util.List;
import java.util.Optional;

import org.apache.hadoop.conf.Configuration;

public final class DeltaRead {
  private static final String USAGE = "usage: DeltaRead <tablePath> [--version N]";

  public static void main(String[] args) {
    String path = null;
    Long version = null;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (a.equals("--version") && i + 1 < args.length) {
        try {
          version = Long.parseLong(args[++i]);
        } catch (NumberFormatException e) {
          usage("--version wants a number, not " + args[i]);
        }
        if (version < 0) usage("--version wants a version >= 0");
      } else if (a.equals("--changes")) {
        fail("--changes: Delta Kernel has no public API to read a table's Change Data Feed "
            + "(delta-kernel-api has no table-changes reader; CommitRange only lists a commit's raw log actions)");
      } else if (a.startsWith("--") || path != null) {
        usage("unexpected argument " + a);
      } else {
        path = a;
      }
    }
    if (path == null) usage("no table path");

    StringBuilder out = new StringBuilder(1 << 16);
    try {
      read(path, version, out);
    } catch (Throwable t) {
      fail(message(t));
    }
    try {
      Writer w = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8));
      w.append(out).append('\n').flush();
    } catch (Throwable t) {
      fail(message(t));
    }
    System.exit(0);
  }

  private static void usage(String why) {
    System.err.println("DeltaRead: " + why);
    System.err.println(USAGE);
    System.exit(2);
  }

  private static void fail(String msg) {
    PrintStream err = System.err;
    err.println("DeltaRead: " + msg);
    err.flush();
    System.exit(1);
  }

  // The exception's class and message, and those of its causes (when they say something new), on one line;
  // each message cut at 600 characters (Kernel quotes whole log lines in some).
  private static String message(Throwable t) {
    StringBuilder sb = new StringBuilder();
    String last = "";
    int depth = 0;
    for (Throwable c = t; c != null && depth < 6; c = c.getCause() == c ? null : c.getCause(), depth++) {
      String m = c.getMessage() == null ? "" : c.getMessage();
      if (depth > 0 && !m.isEmpty() && last.contains(m.length() > 200 ? m.substring(0, 200) : m)) continue;
      if (sb.length() > 0) sb.append(" <- caused by: ");
      sb.append(c.getClass().getName());
      if (!m.isEmpty()) sb.append(": ").append(m.length() > 600 ? m.substring(0, 600) + "..." : m);
      last = m;
    }
    return sb.toString().replace('\n', ' ');
  }

  private static void read(String path, Long version, StringBuilder out) throws Exception {
    Engine engine = DefaultEngine.create(new Configuration());
    String table = engine.getFileSystemClient().resolvePath(path);
    SnapshotBuilder builder = TableManager.loadSnapshot(table);
    if (version != null) builder = builder.atVersion(version);
    Snapshot snapshot = builder.build(engine);
    StructType schema = snapshot.getSchema();

    out.append("{\"version\":").append(snapshot.getVersion());
    out.append(",\"schema\":[");
    for (int i = 0; i < schema.length(); i++) {
      StructField f = schema.at(i);
      if (i > 0) out.append(',');
      out.append("{\"name\":");
      string(out, f.getName());
      out.append(",\"type\":");
      string(out, typeName(f.getDataType()));
      out.append(",\"nullable\":").append(f.isNullable()).append('}');
    }
    out.append("],\"partitionColumns\":[");
    List<String> partitions = snapshot.getPartitionColumnNames();
    for (int i = 0; i < partitions.size(); i++) {
      if (i > 0) out.append(',');
      string(out, partitions.get(i));
    }
    out.append("],\"rows\":[");

    Scan scan = snapshot.getScanBuilder().build();
    Row scanState = scan.getScanState(engine);
    StructType physicalSchema = ScanStateRow.getPhysicalDataReadSchema(scanState);
    boolean first = true;
    try (CloseableIterator<FilteredColumnarBatch> files = scan.getScanFiles(engine)) {
      while (files.hasNext()) {
        FilteredColumnarBatch fileBatch = files.next();
        Optional<ColumnVector> fileSelection = fileBatch.getSelectionVector();
        int index = 0;
        try (CloseableIterator<Row> fileRows = fileBatch.getData().getRows()) {
          while (fileRows.hasNext()) {
            Row scanFile = fileRows.next();
            if (!selected(fileSelection, index++)) continue;
            FileStatus file = InternalScanFileUtils.getAddFileStatus(scanFile);
            CloseableIterator<ColumnarBatch> physical = engine.getParquetHandler()
                .readParquetFiles(single(file), physicalSchema, Optional.empty())
                .map(FileReadResult::getData);
            try (CloseableIterator<FilteredColumnarBatch> logical =
                Scan.transformPhysicalData(engine, scanState, scanFile, physical)) {
              while (logical.hasNext()) {
                FilteredColumnarBatch batch = logical.next();
                ColumnarBatch data = batch.getData();
                Optional<ColumnVector> selection = batch.getSelectionVector();
                StructType dataSchema = data.getSchema();
                for (int r = 0; r < data.getSize(); r++) {
                  if (!selected(selection, r)) continue;
                  if (!first) out.append(',');
                  first = false;
                  out.append('{');
                  for (int c = 0; c < dataSchema.length(); c++) {
                    if (c > 0) out.append(',');
                    string(out, dataSchema.at(c).getName());
                    out.append(':');
                    value(out, data.getColumnVector(c), r);
                  }
                  out.append('}');
                }
              }
            }
          }
        }
      }
    }
    out.append("]}");
  }

  private static boolean selected(Optional<ColumnVector> selection, int row) {
    if (selection.isEmpty()) return true;
    ColumnVector v = selection.get();
    return !v.isNullAt(row) && v.getBoolean(row);
  }

  private static <T> CloseableIterator<T> single(T item) {
    return new CloseableIterator<T>() {
      private boolean done;

      @Override
      public boolean hasNext() {
        return !done;
      }

      @Override
      public T next() {
        if (done) throw new java.util.NoSuchElementException();
        done = true;
        return item;
      }

      @Override
      public void close() {}
    };
  }

  // Delta's own names for the types (as in a table's schemaString); nested types as Spark's simple strings.
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
      return "decimal(" + d.getPrecision() + "," + d.getScale() + ")";
    }
    if (t instanceof ArrayType) return "array<" + typeName(((ArrayType) t).getElementType()) + ">";
    if (t instanceof MapType) {
      MapType m = (MapType) t;
      return "map<" + typeName(m.getKeyType()) + "," + typeName(m.getValueType()) + ">";
    }
    if (t instanceof StructType) {
      StructType s = (StructType) t;
      StringBuilder sb = new StringBuilder("struct<");
      for (int i = 0; i < s.length(); i++) {
        if (i > 0) sb.append(',');
        sb.append(s.at(i).getName()).append(':').append(typeName(s.at(i).getDataType()));
      }
      return sb.append('>').toString();
    }
    return t.toString();
  }

  // The value at row i of vector v, as JSON, by the rules at the top of this file.
  static void value(StringBuilder out, ColumnVector v, int i) {
    if (v.isNullAt(i)) {
      out.append("null");
      return;
    }
    DataType t = v.getDataType();
    if (t instanceof BooleanType) {
      out.append(v.getBoolean(i));
    } else if (t instanceof ByteType) {
      out.append(v.getByte(i));
    } else if (t instanceof ShortType) {
      out.append(v.getShort(i));
    } else if (t instanceof IntegerType) {
      out.append(v.getInt(i));
    } else if (t instanceof LongType || t instanceof TimestampType || t instanceof TimestampNTZType) {
      out.append('"').append(v.getLong(i)).append('"');
    } else if (t instanceof FloatType) {
      floating(out, v.getFloat(i), Float.toString(v.getFloat(i)));
    } else if (t instanceof DoubleType) {
      floating(out, v.getDouble(i), Double.toString(v.getDouble(i)));
    } else if (t instanceof DecimalType) {
      string(out, v.getDecimal(i).toPlainString());
    } else if (t instanceof StringType) {
      string(out, v.getString(i));
    } else if (t instanceof BinaryType) {
      string(out, Base64.getEncoder().encodeToString(v.getBinary(i)));
    } else if (t instanceof DateType) {
      string(out, LocalDate.ofEpochDay(v.getInt(i)).toString());
    } else if (t instanceof StructType) {
      StructType s = (StructType) t;
      out.append('{');
      for (int c = 0; c < s.length(); c++) {
        if (c > 0) out.append(',');
        string(out, s.at(c).getName());
        out.append(':');
        value(out, v.getChild(c), i);
      }
      out.append('}');
    } else if (t instanceof ArrayType) {
      ArrayValue a = v.getArray(i);
      ColumnVector elements = a.getElements();
      out.append('[');
      for (int e = 0; e < a.getSize(); e++) {
        if (e > 0) out.append(',');
        value(out, elements, e);
      }
      out.append(']');
    } else if (t instanceof MapType) {
      MapValue m = v.getMap(i);
      ColumnVector keys = m.getKeys();
      ColumnVector values = m.getValues();
      out.append('{');
      for (int e = 0; e < m.getSize(); e++) {
        if (e > 0) out.append(',');
        StringBuilder key = new StringBuilder();
        value(key, keys, e);
        if (key.length() > 0 && key.charAt(0) == '"') out.append(key);
        else string(out, key.toString());
        out.append(':');
        value(out, values, e);
      }
      out.append('}');
    } else {
      throw new UnsupportedOperationException("no JSON rendering for a value of type " + t);
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
          // Control characters, and lone surrogates and line/paragraph separators so the output is valid
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
