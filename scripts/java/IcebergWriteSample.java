// Writes a small Iceberg v2 table with the Iceberg Java library itself, for the self-test of the reference
// reader (test/lake/iceberg-reader.test.ts): the reader must show exactly the rows, snapshots and files
// written here. Run through `scripts/iceberg-reader.sh sample-write`.
//
//   IcebergWriteSample --dir <dir> [--jdbc <jdbc:postgresql://…> [--catalog NAME] [--id namespace.table]]
//   IcebergWriteSample --dir <dir> --train     the file-system table only, then every reader mode on it, output
//                                              dropped (scripts/iceberg-reader.sh's class-data-sharing archive)
//
// Writes the sample into a file-system (HadoopTables) table at <dir>/fs/sample and, with --jdbc, into
// Iceberg's JDBC catalog (catalog NAME, default "sluice"; table --id, default sluice_test.sample; warehouse
// <dir>/jdbc, so its location is <dir>/jdbc/sluice_test/sample). The JDBC catalog is created with
// jdbc.schema-version=V1 (iceberg_tables gets its iceberg_type column), and the namespace with the property
// owner=sluice. Prints {"filesystem": T, "jdbc": T or null} where T is {"location", "metadataLocation",
// "snapshots": {"append1", "append2", "rowDelta", "append3"}} (snapshot ids as strings).
//
// The table (format-version 2; identifier field: id):
//   1 id long required, 2 qty int, 3 price decimal(12,2), 4 ts timestamp, 5 tstz timestamptz, 6 day date,
//   7 name string, 8 payload binary, 9 flag boolean, 10 score double; added before append3: 11 note string
// Partition spec: day(ts) as ts_day, bucket[4](id) as id_bucket (buckets of ids 1..8: 0 0 3 2 3 1 3 3).
// One data file per partition per commit, rows in the order below.
//
// The rows (ts is UTC wall time; tstz an instant; payload hex):
//   id qty          price           ts                          tstz                              day        name        payload  flag  score
//   1  10           12.34           2026-01-01T00:00:00.000001  2026-01-01T00:00:00.000001Z       2026-01-01 one         0001     true  1.5
//   2  20           -0.05           2026-01-01T23:59:59.999999  2026-01-01T23:59:59.999999+02:00  2026-01-02 two ✓ "q"   ff       false -2.25
//   3  null         9999999999.99   2026-01-02T12:00:00         2026-01-02T12:00:00Z              2000-02-29 null        (empty)  null  NaN
//   4  -7           0.00            1969-12-31T23:59:59.999999  1969-12-31T23:59:59.999999Z       1900-01-01 four        deadbeef true  1.0E300
//   5  2147483647   -9999999999.99  2026-01-02T00:00:00         2026-01-02T00:00:00Z              2026-01-02 five        05       false -0.0
//   6  -2147483648  0.01            2026-01-03T06:30:00.5       2026-01-03T06:30:00.5-05:00       null       six         null     true  null
//   1' 11           12.35           2026-01-04T00:00:00         2026-01-04T00:00:00Z              2026-01-04 one v2      0102     false 2.5
//   7  7            7.00            2026-01-05T07:07:07.070707  2026-01-05T07:07:07.070707Z       2026-01-05 seven       07       true  7.7   note "seven"
//   8  8            8.00            2026-01-05T08:00:00         2026-01-05T08:00:00Z              2026-01-05 eight       08       false 8.0   note null
//
// Snapshots:
//   append1   append rows 1, 2 (one file: partition ts_day=2026-01-01/id_bucket=0), 3, 4
//   append2   append rows 5 (same partition as row 3, its own file), 6
//   rowDelta  one RowDelta ("overwrite"): an equality delete of id=1 (field 1) in row 1's partition and an
//             insert of row 1' (a new partition); a position delete of row 2 (position 1 of the append1 file
//             ts_day=2026-01-01/id_bucket=0); an equality delete of id=5 in row 5's partition (row 3 shares
//             that partition and stays)
//   (schema)  add column 11 note string (optional)
//   append3   append rows 7, 8 (one file); its summary also has sluice.test=append3
// Current rows: 1', 3, 4, 6, 7, 8.

import java.io.IOException;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.apache.hadoop.conf.Configuration;
import org.apache.iceberg.DataFile;
import org.apache.iceberg.DeleteFile;
import org.apache.iceberg.FileFormat;
import org.apache.iceberg.HasTableOperations;
import org.apache.iceberg.PartitionKey;
import org.apache.iceberg.PartitionSpec;
import org.apache.iceberg.RowDelta;
import org.apache.iceberg.Schema;
import org.apache.iceberg.SortOrder;
import org.apache.iceberg.Table;
import org.apache.iceberg.catalog.Namespace;
import org.apache.iceberg.catalog.TableIdentifier;
import org.apache.iceberg.data.GenericFileWriterFactory;
import org.apache.iceberg.data.GenericRecord;
import org.apache.iceberg.data.InternalRecordWrapper;
import org.apache.iceberg.data.Record;
import org.apache.iceberg.deletes.EqualityDeleteWriter;
import org.apache.iceberg.deletes.PositionDelete;
import org.apache.iceberg.deletes.PositionDeleteWriter;
import org.apache.iceberg.hadoop.HadoopTables;
import org.apache.iceberg.io.DataWriter;
import org.apache.iceberg.io.OutputFileFactory;
import org.apache.iceberg.jdbc.JdbcCatalog;
import org.apache.iceberg.types.Types;

public final class IcebergWriteSample {
  private static final String USAGE =
      "usage: IcebergWriteSample --dir <dir> [--jdbc <jdbc:postgresql://…> [--catalog NAME] [--id namespace.table]] | --dir <dir> --train";

  public static void main(String[] argv) {
    String dir = null;
    String jdbc = null;
    String catalogName = "sluice";
    String id = "sluice_test.sample";
    boolean train = false;
    for (int i = 0; i < argv.length; i++) {
      if (argv[i].equals("--train")) {
        train = true;
        continue;
      }
      if (i + 1 >= argv.length) usage("unexpected argument " + argv[i]);
      switch (argv[i]) {
        case "--dir": dir = argv[++i]; break;
        case "--jdbc": jdbc = argv[++i]; break;
        case "--catalog": catalogName = argv[++i]; break;
        case "--id": id = argv[++i]; break;
        default: usage("unexpected argument " + argv[i]);
      }
    }
    if (dir == null) usage("no --dir");
    if (train && jdbc != null) usage("--train writes no JDBC table");
    StringBuilder out = new StringBuilder();
    try {
      Configuration conf = new Configuration();
      dir = new java.io.File(dir).getAbsolutePath();
      Table fs = new HadoopTables(conf).create(schema(), spec(), SortOrder.unsorted(), Map.of("format-version", "2"), dir + "/fs/sample");
      out.append("{\"filesystem\":");
      result(out, fs, write(fs));
      if (train) IcebergRead.exercise(fs.location());
      out.append(",\"jdbc\":");
      if (jdbc == null) {
        out.append("null");
      } else {
        JdbcCatalog catalog = new JdbcCatalog();
        catalog.setConf(conf);
        Map<String, String> props = new LinkedHashMap<>();
        props.put("uri", jdbc);
        props.put("warehouse", dir + "/jdbc");
        if (!jdbc.contains("user=")) props.put("jdbc.user", "postgres");
        props.put("jdbc.schema-version", "V1");
        catalog.initialize(catalogName, props);
        TableIdentifier ident = TableIdentifier.parse(id);
        if (!catalog.namespaceExists(ident.namespace())) catalog.createNamespace(ident.namespace(), Map.of("owner", "sluice"));
        Table t = catalog.buildTable(ident, schema()).withPartitionSpec(spec()).withProperty("format-version", "2").create();
        result(out, t, write(t));
        catalog.close();
      }
      out.append('}');
    } catch (Throwable t) {
      System.err.println("IcebergWriteSample: " + IcebergRead.message(t));
      System.exit(1);
    }
    System.out.println(out);
    System.exit(0);
  }

  private static void usage(String why) {
    System.err.println("IcebergWriteSample: " + why);
    System.err.println(USAGE);
    System.exit(2);
  }

  private static void result(StringBuilder out, Table t, Map<String, Long> snapshots) {
    out.append("{\"location\":");
    IcebergRead.string(out, t.location());
    out.append(",\"metadataLocation\":");
    IcebergRead.string(out, ((HasTableOperations) t).operations().current().metadataFileLocation());
    out.append(",\"snapshots\":{");
    int i = 0;
    for (Map.Entry<String, Long> e : snapshots.entrySet()) {
      if (i++ > 0) out.append(',');
      IcebergRead.string(out, e.getKey());
      out.append(":\"").append(e.getValue()).append('"');
    }
    out.append("}}");
  }

  static Schema schema() {
    return new Schema(
        List.of(
            Types.NestedField.required(1, "id", Types.LongType.get()),
            Types.NestedField.optional(2, "qty", Types.IntegerType.get()),
            Types.NestedField.optional(3, "price", Types.DecimalType.of(12, 2)),
            Types.NestedField.optional(4, "ts", Types.TimestampType.withoutZone()),
            Types.NestedField.optional(5, "tstz", Types.TimestampType.withZone()),
            Types.NestedField.optional(6, "day", Types.DateType.get()),
            Types.NestedField.optional(7, "name", Types.StringType.get()),
            Types.NestedField.optional(8, "payload", Types.BinaryType.get()),
            Types.NestedField.optional(9, "flag", Types.BooleanType.get()),
            Types.NestedField.optional(10, "score", Types.DoubleType.get())),
        java.util.Set.of(1));
  }

  static PartitionSpec spec() {
    return PartitionSpec.builderFor(schema()).day("ts", "ts_day").bucket("id", 4, "id_bucket").build();
  }

  private static Record row(Schema schema, long id, Integer qty, String price, String ts, String tstz, String day,
      String name, String payloadHex, Boolean flag, Double score) {
    Record r = GenericRecord.create(schema);
    r.setField("id", id);
    r.setField("qty", qty);
    r.setField("price", price == null ? null : new BigDecimal(price));
    r.setField("ts", ts == null ? null : LocalDateTime.parse(ts));
    r.setField("tstz", tstz == null ? null : OffsetDateTime.parse(tstz));
    r.setField("day", day == null ? null : LocalDate.parse(day));
    r.setField("name", name);
    r.setField("payload", payloadHex == null ? null : ByteBuffer.wrap(HexFormat.of().parseHex(payloadHex)));
    r.setField("flag", flag);
    r.setField("score", score);
    return r;
  }

  private static Map<String, Long> write(Table table) throws IOException {
    Map<String, Long> snapshots = new LinkedHashMap<>();
    Schema s = table.schema();
    Record r1 = row(s, 1, 10, "12.34", "2026-01-01T00:00:00.000001", "2026-01-01T00:00:00.000001Z", "2026-01-01", "one", "0001", true, 1.5);
    Record r2 = row(s, 2, 20, "-0.05", "2026-01-01T23:59:59.999999", "2026-01-01T23:59:59.999999+02:00", "2026-01-02", "two ✓ \"q\"", "ff", false, -2.25);
    Record r3 = row(s, 3, null, "9999999999.99", "2026-01-02T12:00:00", "2026-01-02T12:00:00Z", "2000-02-29", null, "", null, Double.NaN);
    Record r4 = row(s, 4, -7, "0.00", "1969-12-31T23:59:59.999999", "1969-12-31T23:59:59.999999Z", "1900-01-01", "four", "deadbeef", true, 1.0e300);
    Record r5 = row(s, 5, Integer.MAX_VALUE, "-9999999999.99", "2026-01-02T00:00:00", "2026-01-02T00:00:00Z", "2026-01-02", "five", "05", false, -0.0);
    Record r6 = row(s, 6, Integer.MIN_VALUE, "0.01", "2026-01-03T06:30:00.5", "2026-01-03T06:30:00.5-05:00", null, "six", null, true, null);
    Record r1b = row(s, 1, 11, "12.35", "2026-01-04T00:00:00", "2026-01-04T00:00:00Z", "2026-01-04", "one v2", "0102", false, 2.5);

    OutputFileFactory files = OutputFileFactory.builderFor(table, 1, 1).format(FileFormat.PARQUET).build();

    // append1
    List<DataFile> append1 = writeData(table, files, List.of(r1, r2, r3, r4));
    var append = table.newAppend();
    append1.forEach(append::appendFile);
    append.commit();
    snapshots.put("append1", table.currentSnapshot().snapshotId());

    // append2
    var second = table.newAppend();
    writeData(table, files, List.of(r5, r6)).forEach(second::appendFile);
    second.commit();
    snapshots.put("append2", table.currentSnapshot().snapshotId());

    // rowDelta: update 1 (equality delete + insert), delete 2 by position, delete 5 by equality
    PartitionKey p1 = partition(table, r1);
    DataFile firstFile = append1.stream().filter(f -> samePartition(table, f, p1)).findFirst()
        .orElseThrow(() -> new IllegalStateException("no append1 file in row 1's partition"));
    Schema idOnly = table.schema().select("id");
    GenericFileWriterFactory deletes = new GenericFileWriterFactory.Builder(table)
        .dataFileFormat(FileFormat.PARQUET).deleteFileFormat(FileFormat.PARQUET)
        .equalityFieldIds(new int[] {1}).equalityDeleteRowSchema(idOnly).build();
    RowDelta delta = table.newRowDelta();
    delta.addDeletes(equalityDelete(table, files, deletes, idOnly, r1));
    delta.addDeletes(equalityDelete(table, files, deletes, idOnly, r5));
    PositionDeleteWriter<Record> pos = deletes.newPositionDeleteWriter(files.newOutputFile(table.spec(), p1), table.spec(), p1);
    try (pos) {
      pos.write(PositionDelete.<Record>create().set(firstFile.location(), 1L));
    }
    delta.addDeletes(pos.toDeleteFile());
    writeData(table, files, List.of(r1b)).forEach(delta::addRows);
    delta.commit();
    snapshots.put("rowDelta", table.currentSnapshot().snapshotId());

    // schema change, then append3 with the new column
    table.updateSchema().addColumn("note", Types.StringType.get()).commit();
    Schema s2 = table.schema();
    Record r7 = row(s2, 7, 7, "7.00", "2026-01-05T07:07:07.070707", "2026-01-05T07:07:07.070707Z", "2026-01-05", "seven", "07", true, 7.7);
    r7.setField("note", "seven");
    Record r8 = row(s2, 8, 8, "8.00", "2026-01-05T08:00:00", "2026-01-05T08:00:00Z", "2026-01-05", "eight", "08", false, 8.0);
    var third = table.newAppend();
    writeData(table, files, List.of(r7, r8)).forEach(third::appendFile);
    third.set("sluice.test", "append3");
    third.commit();
    snapshots.put("append3", table.currentSnapshot().snapshotId());
    return snapshots;
  }

  private static boolean samePartition(Table table, DataFile f, PartitionKey key) {
    return table.spec().partitionToPath(f.partition()).equals(table.spec().partitionToPath(key));
  }

  private static PartitionKey partition(Table table, Record r) {
    PartitionKey key = new PartitionKey(table.spec(), table.schema());
    key.partition(new InternalRecordWrapper(table.schema().asStruct()).wrap(r));
    return key.copy();
  }

  // One data file per partition, rows in the order given.
  private static List<DataFile> writeData(Table table, OutputFileFactory files, List<Record> rows) throws IOException {
    GenericFileWriterFactory factory = new GenericFileWriterFactory.Builder(table).dataFileFormat(FileFormat.PARQUET).build();
    Map<String, List<Record>> groups = new LinkedHashMap<>();
    Map<String, PartitionKey> keys = new LinkedHashMap<>();
    for (Record r : rows) {
      PartitionKey key = partition(table, r);
      String path = key.toPath();
      keys.putIfAbsent(path, key);
      groups.computeIfAbsent(path, k -> new ArrayList<>()).add(r);
    }
    List<DataFile> out = new ArrayList<>();
    for (Map.Entry<String, List<Record>> g : groups.entrySet()) {
      PartitionKey key = keys.get(g.getKey());
      DataWriter<Record> w = factory.newDataWriter(files.newOutputFile(table.spec(), key), table.spec(), key);
      try (w) {
        for (Record r : g.getValue()) w.write(r);
      }
      out.add(w.toDataFile());
    }
    return out;
  }

  private static DeleteFile equalityDelete(Table table, OutputFileFactory files, GenericFileWriterFactory factory, Schema idOnly, Record old)
      throws IOException {
    PartitionKey key = partition(table, old);
    Record d = GenericRecord.create(idOnly);
    d.setField("id", old.getField("id"));
    EqualityDeleteWriter<Record> w = factory.newEqualityDeleteWriter(files.newOutputFile(table.spec(), key), table.spec(), key);
    try (w) {
      w.write(d);
    }
    return w.toDeleteFile();
  }
}
