// A reference reader of Apache Iceberg tables for Sluice's tests: the Iceberg Java library itself
// (org.apache.iceberg:iceberg-core, iceberg-data, iceberg-parquet) loads a table from a file-system (Hadoop)
// location or from Iceberg's JDBC catalog in PostgreSQL, and this program prints what it read as one JSON
// document on stdout, with exact values so a test can compare them with what a writer meant to write. Run
// through scripts/iceberg-reader.sh, which fetches the jars and compiles this file.
//
//   IcebergRead <mode> <table> [options]
//     <table>:  --table <table directory | .../metadata/<file>.metadata.json>
//             | --jdbc <jdbc:postgresql://…> --id <namespace.table> [--catalog <name>] [--warehouse <dir>]
//     <mode>:   snapshots | scan [--snapshot ID] | incremental --from ID [--to ID] | files [--snapshot ID]
//
// A table directory is loaded with HadoopTables when it has metadata/version-hint.text; without the hint,
// from its newest metadata file (vN.metadata.json, or NNNNN-<uuid>.metadata.json as catalogs name them: the
// highest N). A JDBC table is loaded through JdbcCatalog (catalog name --catalog, default "sluice"; user
// postgres unless the URI names one), which reads its metadata_location from the iceberg_tables table; the
// reader never creates or alters the catalog's tables (jdbc.init-catalog-tables=false, schema version left
// as found). --warehouse is optional for reading (the catalog only uses it to place new tables).
//
// Output, by mode (every Java long — snapshot ids, sequence numbers, millisecond times, record counts — is
// a string of its digits, so JavaScript reads it exactly):
//   snapshots:   {"formatVersion", "tableUuid", "location", "metadataLocation", "currentSchemaId",
//                 "schema": [field…], "identifierFieldIds": [id…], "specId",
//                 "partitionSpec": [{"fieldId", "name", "transform", "sourceId", "sourceName"}…],
//                 "properties": {…}, "currentSnapshotId" (null when none), "lastSequenceNumber",
//                 "snapshots": [{"id", "parentId", "sequenceNumber", "timestampMs", "operation",
//                                "schemaId", "manifestList", "summary": {…}}…]}   (in commit order)
//   scan:        {"snapshotId", "schema": [field…], "rows": [{column: value…}…]}
//                 the table at that snapshot (the current one by default) read with iceberg-data's
//                 IcebergGenerics, which applies position and equality deletes; the snapshot's schema.
//   incremental: {"snapshotId" (= to), "fromSnapshotId", "appendSnapshotIds": [id…], "schema", "rows"}
//                 the rows appended in (from, to] (to: the current snapshot by default), planned by
//                 Iceberg's IncrementalAppendScan: only snapshots whose operation is "append" count
//                 (overwrite/delete/replace snapshots in between are skipped, as Iceberg does), and deletes
//                 committed later are not applied; read with the table's current schema.
//   files:       {"snapshotId", "files": [{"content": "data"|"position_deletes"|"equality_deletes",
//                 "path", "format", "specId", "partition": {name: value…}, "partitionPath",
//                 "recordCount", "fileSizeInBytes", "dataSequenceNumber", "fileSequenceNumber",
//                 "equalityFieldIds" (null unless equality deletes), "referencedDataFile" (deletes; null
//                 when not set), "columns": {fieldId: {"valueCount", "nullValueCount", "nanValueCount",
//                 "lowerBound", "upperBound"}}, "parquetFieldIds": {column path: field id or null}}…]}
//                 the snapshot's live (added or existing) data and delete files, from its manifests; data
//                 first, then deletes, each by path. parquetFieldIds comes from the Parquet file's own
//                 footer (paths joined with "."; a list's element is "<col>.list.element" as Parquet
//                 names it), so a test can check that a writer put the field ids there.
//   field:       {"id", "name", "type", "required"} (plus "doc" when there is one). Types by Iceberg's
//                 spec names: boolean, int, long, float, double, decimal(P,S), date, time, timestamp,
//                 timestamptz, timestamp_ns, timestamptz_ns, string, uuid, fixed[L], binary; nested as
//                 struct<name:type,…>, list<type>, map<key,value>.
//
// Values (as scripts/java/DeltaRead.java renders them): null; boolean; int as a number; long as a string;
// float/double as numbers ("NaN", "Infinity", "-Infinity" as strings); decimal as
// BigDecimal.toPlainString(); string; binary and fixed as base64; uuid as its text; date as YYYY-MM-DD;
// time as a string of microseconds since midnight; timestamp and timestamptz as a string of microseconds
// since the epoch (timestamp_ns, timestamptz_ns: nanoseconds); struct as an object; list as an array; map
// as an object of key → value (a key that is not a string is written as its JSON text). Partition values
// and column bounds are rendered the same way by the partition field's or column's type.
// Rows are sorted by their values, column by column in schema order (nulls first), so output is stable.
//
// Any error: its message on stderr, exit status 1; a wrong command line: usage on stderr, exit status 2.

import java.io.BufferedWriter;
import java.io.File;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.iceberg.BaseTable;
import org.apache.iceberg.ContentFile;
import org.apache.iceberg.DataFile;
import org.apache.iceberg.DataOperations;
import org.apache.iceberg.DeleteFile;
import org.apache.iceberg.FileContent;
import org.apache.iceberg.FileFormat;
import org.apache.iceberg.FileScanTask;
import org.apache.iceberg.HasTableOperations;
import org.apache.iceberg.ManifestFile;
import org.apache.iceberg.ManifestFiles;
import org.apache.iceberg.ManifestReader;
import org.apache.iceberg.MetadataColumns;
import org.apache.iceberg.PartitionField;
import org.apache.iceberg.PartitionSpec;
import org.apache.iceberg.Schema;
import org.apache.iceberg.Snapshot;
import org.apache.iceberg.StaticTableOperations;
import org.apache.iceberg.StructLike;
import org.apache.iceberg.Table;
import org.apache.iceberg.TableMetadata;
import org.apache.iceberg.catalog.TableIdentifier;
import org.apache.iceberg.data.GenericDeleteFilter;
import org.apache.iceberg.data.IcebergGenerics;
import org.apache.iceberg.data.IdentityPartitionConverters;
import org.apache.iceberg.data.Record;
import org.apache.iceberg.data.parquet.GenericParquetReaders;
import org.apache.iceberg.hadoop.HadoopFileIO;
import org.apache.iceberg.hadoop.HadoopTables;
import org.apache.iceberg.io.CloseableIterable;
import org.apache.iceberg.io.FileIO;
import org.apache.iceberg.jdbc.JdbcCatalog;
import org.apache.iceberg.parquet.Parquet;
import org.apache.iceberg.types.Conversions;
import org.apache.iceberg.types.Type;
import org.apache.iceberg.types.Types;
import org.apache.iceberg.util.PartitionUtil;
import org.apache.iceberg.util.SnapshotUtil;
import org.apache.parquet.hadoop.ParquetFileReader;
import org.apache.parquet.hadoop.util.HadoopInputFile;
import org.apache.parquet.schema.GroupType;
import org.apache.parquet.schema.MessageType;

public final class IcebergRead {
  private static final String USAGE =
      "usage: IcebergRead (snapshots | scan [--snapshot ID] | incremental --from ID [--to ID] | files [--snapshot ID])\n"
          + "         (--table <dir or metadata.json> | --jdbc <jdbc:postgresql://…> --id <namespace.table> [--catalog NAME] [--warehouse DIR])";

  private static final class Args {
    String mode;
    String table;
    String jdbc;
    String warehouse;
    String id;
    String catalog = "sluice";
    Long snapshot;
    Long from;
    Long to;
  }

  public static void main(String[] argv) {
    Args a = parse(argv);
    StringBuilder out = new StringBuilder(1 << 16);
    try {
      Table table = load(a);
      switch (a.mode) {
        case "snapshots": snapshots(table, out); break;
        case "scan": scan(table, a.snapshot, out); break;
        case "incremental": incremental(table, a.from, a.to, out); break;
        case "files": files(table, a.snapshot, out); break;
        default: usage("unknown mode " + a.mode);
      }
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

  private static Args parse(String[] argv) {
    Args a = new Args();
    for (int i = 0; i < argv.length; i++) {
      String s = argv[i];
      if (s.startsWith("--")) {
        if (i + 1 >= argv.length) usage(s + " wants a value");
        String v = argv[++i];
        switch (s) {
          case "--table": a.table = v; break;
          case "--jdbc": a.jdbc = v; break;
          case "--warehouse": a.warehouse = v; break;
          case "--id": a.id = v; break;
          case "--catalog": a.catalog = v; break;
          case "--snapshot": a.snapshot = snapshotId(s, v); break;
          case "--from": a.from = snapshotId(s, v); break;
          case "--to": a.to = snapshotId(s, v); break;
          default: usage("unknown option " + s);
        }
      } else if (a.mode == null) {
        a.mode = s;
      } else {
        usage("unexpected argument " + s);
      }
    }
    if (a.mode == null) usage("no mode");
    if (!List.of("snapshots", "scan", "incremental", "files").contains(a.mode)) usage("unknown mode " + a.mode);
    if ((a.table == null) == (a.jdbc == null)) usage("name the table with either --table or --jdbc");
    if (a.jdbc != null && a.id == null) usage("--jdbc wants --id <namespace.table>");
    if (a.table != null && (a.id != null || a.warehouse != null)) usage("--id and --warehouse go with --jdbc, not --table");
    if (a.mode.equals("incremental") && a.from == null) usage("incremental wants --from <snapshot id>");
    if (!a.mode.equals("incremental") && (a.from != null || a.to != null)) usage("--from and --to go with incremental");
    if (a.snapshot != null && !(a.mode.equals("scan") || a.mode.equals("files"))) usage("--snapshot goes with scan or files");
    return a;
  }

  private static long snapshotId(String opt, String v) {
    try {
      return Long.parseLong(v);
    } catch (NumberFormatException e) {
      usage(opt + " wants a snapshot id (a 64-bit integer), not " + v);
      return 0;
    }
  }

  private static void usage(String why) {
    System.err.println("IcebergRead: " + why);
    System.err.println(USAGE);
    System.exit(2);
  }

  private static void fail(String msg) {
    System.err.println("IcebergRead: " + msg);
    System.err.flush();
    System.exit(1);
  }

  // The exception's class and message, and those of its causes (when they say something new), on one line.
  static String message(Throwable t) {
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

  // Every mode once on a file-system table, the output dropped: scripts/iceberg-reader.sh runs this (through
  // IcebergWriteSample --train) to record the classes a read loads in a class-data-sharing archive, which about
  // halves the start-up of each later call.
  static void exercise(String location) throws Exception {
    Args a = new Args();
    a.table = location;
    Table table = load(a);
    StringBuilder sink = new StringBuilder();
    snapshots(table, sink);
    scan(table, null, sink);
    Snapshot oldest = SnapshotUtil.oldestAncestor(table);
    if (oldest != null) incremental(table, oldest.snapshotId(), null, sink);
    files(table, null, sink);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Loading

  private static Table load(Args a) {
    Configuration conf = new Configuration();
    if (a.table != null) return loadPath(a.table, conf);
    JdbcCatalog catalog = new JdbcCatalog();
    catalog.setConf(conf);
    Map<String, String> props = new HashMap<>();
    props.put("uri", a.jdbc);
    props.put("warehouse", a.warehouse != null ? a.warehouse : System.getProperty("java.io.tmpdir"));
    if (!a.jdbc.contains("user=")) props.put("jdbc.user", "postgres");
    props.put("jdbc.init-catalog-tables", "false");
    catalog.initialize(a.catalog, props);
    return catalog.loadTable(TableIdentifier.parse(a.id));
  }

  private static final Pattern HADOOP_NAME = Pattern.compile("v(\\d+)\\.metadata\\.json(\\.gz)?");
  private static final Pattern CATALOG_NAME = Pattern.compile("(\\d+)-.*\\.metadata\\.json(\\.gz)?");

  private static Table loadPath(String location, Configuration conf) {
    String local = location.startsWith("file:") ? new Path(location).toUri().getPath() : location;
    File f = new File(local);
    if (f.isFile()) {
      if (!f.getName().matches(".*\\.metadata\\.json(\\.gz)?")) {
        throw new IllegalArgumentException(location + " is a file but not an Iceberg metadata file (*.metadata.json)");
      }
      return staticTable(location, conf);
    }
    if (!f.isDirectory()) throw new IllegalArgumentException("no such table directory or metadata file: " + location);
    File metadata = new File(f, "metadata");
    if (!metadata.isDirectory() && newestMetadata(f) != null) metadata = f; // given the metadata/ directory itself
    if (new File(metadata, "version-hint.text").isFile() && metadata != f) {
      return new HadoopTables(conf).load(location);
    }
    File newest = newestMetadata(metadata);
    if (newest == null) {
      throw new IllegalArgumentException("no Iceberg metadata in " + metadata + " (no version-hint.text, no *.metadata.json)");
    }
    return staticTable(newest.getPath(), conf);
  }

  // The metadata file with the highest version number: vN.metadata.json (HadoopTables) or NNNNN-uuid.metadata.json.
  private static File newestMetadata(File dir) {
    File[] files = dir.listFiles();
    if (files == null) return null;
    File best = null;
    long bestVersion = -1;
    for (File c : files) {
      Matcher m = HADOOP_NAME.matcher(c.getName());
      Matcher n = CATALOG_NAME.matcher(c.getName());
      long v;
      if (m.matches()) v = Long.parseLong(m.group(1));
      else if (n.matches()) v = Long.parseLong(n.group(1));
      else continue;
      if (v > bestVersion || (v == bestVersion && best != null && c.getName().compareTo(best.getName()) > 0)) {
        best = c;
        bestVersion = v;
      }
    }
    return best;
  }

  private static Table staticTable(String metadataLocation, Configuration conf) {
    FileIO io = new HadoopFileIO(conf);
    return new BaseTable(new StaticTableOperations(metadataLocation, io), metadataLocation);
  }

  private static TableMetadata metadata(Table table) {
    return ((HasTableOperations) table).operations().current();
  }

  private static Snapshot snapshotOrCurrent(Table table, Long id) {
    if (id == null) return table.currentSnapshot();
    Snapshot s = table.snapshot(id);
    if (s == null) throw new IllegalArgumentException("table has no snapshot " + id);
    return s;
  }

  private static Schema schemaOf(Table table, Snapshot s) {
    if (s == null || s.schemaId() == null) return table.schema();
    Schema schema = table.schemas().get(s.schemaId());
    return schema != null ? schema : table.schema();
  }

  // ---------------------------------------------------------------------------------------------------------
  // Modes

  private static void snapshots(Table table, StringBuilder out) {
    TableMetadata md = metadata(table);
    out.append("{\"formatVersion\":").append(md.formatVersion());
    out.append(",\"tableUuid\":");
    string(out, md.uuid());
    out.append(",\"location\":");
    string(out, md.location());
    out.append(",\"metadataLocation\":");
    nullableString(out, md.metadataFileLocation());
    out.append(",\"currentSchemaId\":").append(table.schema().schemaId());
    out.append(",\"schema\":");
    schema(out, table.schema());
    out.append(",\"identifierFieldIds\":[");
    int k = 0;
    for (Integer id : new java.util.TreeSet<>(table.schema().identifierFieldIds())) {
      if (k++ > 0) out.append(',');
      out.append(id);
    }
    out.append("],\"specId\":").append(table.spec().specId());
    out.append(",\"partitionSpec\":");
    spec(out, table.spec(), table.schema());
    out.append(",\"properties\":");
    stringMap(out, table.properties());
    Snapshot current = table.currentSnapshot();
    out.append(",\"currentSnapshotId\":");
    nullableLong(out, current == null ? null : current.snapshotId());
    out.append(",\"lastSequenceNumber\":");
    longString(out, md.lastSequenceNumber());
    out.append(",\"snapshots\":[");
    List<Snapshot> list = new ArrayList<>();
    table.snapshots().forEach(list::add);
    list.sort(Comparator.comparingLong(Snapshot::sequenceNumber).thenComparingLong(Snapshot::timestampMillis));
    for (int i = 0; i < list.size(); i++) {
      Snapshot s = list.get(i);
      if (i > 0) out.append(',');
      out.append("{\"id\":");
      longString(out, s.snapshotId());
      out.append(",\"parentId\":");
      nullableLong(out, s.parentId());
      out.append(",\"sequenceNumber\":");
      longString(out, s.sequenceNumber());
      out.append(",\"timestampMs\":");
      longString(out, s.timestampMillis());
      out.append(",\"operation\":");
      nullableString(out, s.operation());
      out.append(",\"schemaId\":").append(s.schemaId() == null ? "null" : s.schemaId().toString());
      out.append(",\"manifestList\":");
      nullableString(out, s.manifestListLocation());
      out.append(",\"summary\":");
      stringMap(out, s.summary() == null ? Map.of() : s.summary());
      out.append('}');
    }
    out.append("]}");
  }

  private static void scan(Table table, Long snapshotId, StringBuilder out) throws Exception {
    Snapshot s = snapshotOrCurrent(table, snapshotId);
    Schema schema = schemaOf(table, s);
    List<Record> rows = new ArrayList<>();
    if (s != null) {
      try (CloseableIterable<Record> records = IcebergGenerics.read(table).useSnapshot(s.snapshotId()).build()) {
        for (Record r : records) rows.add(r.copy());
      }
    }
    out.append("{\"snapshotId\":");
    nullableLong(out, s == null ? null : s.snapshotId());
    out.append(",\"schema\":");
    schema(out, schema);
    out.append(",\"rows\":");
    rows(out, schema, rows);
    out.append('}');
  }

  private static void incremental(Table table, long from, Long to, StringBuilder out) throws Exception {
    if (table.snapshot(from) == null) throw new IllegalArgumentException("table has no snapshot " + from);
    long toId;
    if (to != null) {
      if (table.snapshot(to) == null) throw new IllegalArgumentException("table has no snapshot " + to);
      toId = to;
    } else {
      if (table.currentSnapshot() == null) throw new IllegalArgumentException("table has no current snapshot");
      toId = table.currentSnapshot().snapshotId();
    }
    Schema schema = table.schema();
    List<Long> appends = new ArrayList<>();
    for (Snapshot s : SnapshotUtil.ancestorsBetween(toId, from, table::snapshot)) {
      if (DataOperations.APPEND.equals(s.operation())) appends.add(s.snapshotId());
    }
    java.util.Collections.reverse(appends);
    List<Record> rows = new ArrayList<>();
    if (from != toId) {
      try (CloseableIterable<FileScanTask> tasks =
          table.newIncrementalAppendScan().fromSnapshotExclusive(from).toSnapshot(toId).planFiles()) {
        for (FileScanTask task : tasks) {
          try (CloseableIterable<Record> records = read(table, schema, task)) {
            for (Record r : records) rows.add(r.copy());
          }
        }
      }
    }
    out.append("{\"snapshotId\":");
    longString(out, toId);
    out.append(",\"fromSnapshotId\":");
    longString(out, from);
    out.append(",\"appendSnapshotIds\":[");
    for (int i = 0; i < appends.size(); i++) {
      if (i > 0) out.append(',');
      longString(out, appends.get(i));
    }
    out.append("],\"schema\":");
    schema(out, schema);
    out.append(",\"rows\":");
    rows(out, schema, rows);
    out.append('}');
  }

  // One scan task's rows, its delete files applied (an append scan's tasks carry none), with Iceberg's generic
  // Parquet reader: what iceberg-data's own reader does for a table scan, for the tasks of an incremental one.
  private static CloseableIterable<Record> read(Table table, Schema projection, FileScanTask task) {
    if (task.file().format() != FileFormat.PARQUET) {
      throw new UnsupportedOperationException("only Parquet data files are read here, not " + task.file().format() + ": " + task.file().location());
    }
    GenericDeleteFilter deletes = new GenericDeleteFilter(table.io(), task, table.schema(), projection);
    Schema readSchema = deletes.requiredSchema();
    Map<Integer, ?> constants = PartitionUtil.constantsMap(task, IdentityPartitionConverters::convertConstant);
    CloseableIterable<Record> records = Parquet.read(table.io().newInputFile(task.file().location()))
        .project(readSchema)
        .split(task.start(), task.length())
        .createReaderFunc(fileSchema -> GenericParquetReaders.buildReader(readSchema, fileSchema, constants))
        .build();
    return deletes.filter(records);
  }

  private static void files(Table table, Long snapshotId, StringBuilder out) throws Exception {
    Snapshot s = snapshotOrCurrent(table, snapshotId);
    List<ContentFile<?>> files = new ArrayList<>();
    if (s != null) {
      for (ManifestFile m : s.dataManifests(table.io())) {
        try (ManifestReader<DataFile> r = ManifestFiles.read(m, table.io(), table.specs())) {
          for (DataFile f : r) files.add(f.copy());
        }
      }
      for (ManifestFile m : s.deleteManifests(table.io())) {
        try (ManifestReader<DeleteFile> r = ManifestFiles.readDeleteManifest(m, table.io(), table.specs())) {
          for (DeleteFile f : r) files.add(f.copy());
        }
      }
    }
    files.sort(Comparator.<ContentFile<?>>comparingInt(f -> f.content().ordinal()).thenComparing(ContentFile::location));
    Schema schema = schemaOf(table, s);
    Configuration conf = new Configuration();
    out.append("{\"snapshotId\":");
    nullableLong(out, s == null ? null : s.snapshotId());
    out.append(",\"files\":[");
    for (int i = 0; i < files.size(); i++) {
      ContentFile<?> f = files.get(i);
      if (i > 0) out.append(',');
      PartitionSpec spec = table.specs().get(f.specId());
      out.append("{\"content\":");
      string(out, contentName(f.content()));
      out.append(",\"path\":");
      string(out, f.location());
      out.append(",\"format\":");
      string(out, f.format().name().toLowerCase(java.util.Locale.ROOT));
      out.append(",\"specId\":").append(f.specId());
      out.append(",\"partition\":");
      partition(out, spec, f.partition());
      out.append(",\"partitionPath\":");
      string(out, spec.partitionToPath(f.partition()));
      out.append(",\"recordCount\":");
      longString(out, f.recordCount());
      out.append(",\"fileSizeInBytes\":");
      longString(out, f.fileSizeInBytes());
      out.append(",\"dataSequenceNumber\":");
      nullableLong(out, f.dataSequenceNumber());
      out.append(",\"fileSequenceNumber\":");
      nullableLong(out, f.fileSequenceNumber());
      out.append(",\"equalityFieldIds\":");
      if (f.content() == FileContent.EQUALITY_DELETES && f.equalityFieldIds() != null) {
        out.append('[');
        for (int k = 0; k < f.equalityFieldIds().size(); k++) {
          if (k > 0) out.append(',');
          out.append(f.equalityFieldIds().get(k));
        }
        out.append(']');
      } else {
        out.append("null");
      }
      out.append(",\"referencedDataFile\":");
      nullableString(out, f instanceof DeleteFile ? ((DeleteFile) f).referencedDataFile() : null);
      out.append(",\"columns\":");
      columns(out, schema, f);
      out.append(",\"parquetFieldIds\":");
      if (f.format() == FileFormat.PARQUET) parquetFieldIds(out, f.location(), conf);
      else out.append("null");
      out.append('}');
    }
    out.append("]}");
  }

  private static String contentName(FileContent c) {
    switch (c) {
      case DATA: return "data";
      case POSITION_DELETES: return "position_deletes";
      case EQUALITY_DELETES: return "equality_deletes";
      default: return c.name().toLowerCase(java.util.Locale.ROOT);
    }
  }

  private static void partition(StringBuilder out, PartitionSpec spec, StructLike p) {
    Types.StructType type = spec.partitionType();
    out.append('{');
    List<Types.NestedField> fields = type.fields();
    for (int i = 0; i < fields.size(); i++) {
      if (i > 0) out.append(',');
      string(out, fields.get(i).name());
      out.append(':');
      value(out, fields.get(i).type(), p.get(i, Object.class));
    }
    out.append('}');
  }

  // Per-column metrics the manifest holds for a file, by field id; bounds decoded by the column's type.
  private static void columns(StringBuilder out, Schema schema, ContentFile<?> f) {
    TreeMap<Integer, Boolean> ids = new TreeMap<>();
    for (Map<Integer, ?> m : Arrays.asList(f.valueCounts(), f.nullValueCounts(), f.nanValueCounts(), f.lowerBounds(), f.upperBounds())) {
      if (m != null) for (Integer id : m.keySet()) ids.put(id, true);
    }
    out.append('{');
    int k = 0;
    for (Integer id : ids.keySet()) {
      if (k++ > 0) out.append(',');
      string(out, id.toString());
      out.append(":{\"valueCount\":");
      nullableLong(out, f.valueCounts() == null ? null : f.valueCounts().get(id));
      out.append(",\"nullValueCount\":");
      nullableLong(out, f.nullValueCounts() == null ? null : f.nullValueCounts().get(id));
      out.append(",\"nanValueCount\":");
      nullableLong(out, f.nanValueCounts() == null ? null : f.nanValueCounts().get(id));
      Type type = columnType(schema, id);
      out.append(",\"lowerBound\":");
      bound(out, type, f.lowerBounds() == null ? null : f.lowerBounds().get(id));
      out.append(",\"upperBound\":");
      bound(out, type, f.upperBounds() == null ? null : f.upperBounds().get(id));
      out.append('}');
    }
    out.append('}');
  }

  private static Type columnType(Schema schema, int id) {
    Types.NestedField field = schema.findField(id);
    if (field != null) return field.type();
    if (id == MetadataColumns.DELETE_FILE_PATH.fieldId()) return MetadataColumns.DELETE_FILE_PATH.type();
    if (id == MetadataColumns.DELETE_FILE_POS.fieldId()) return MetadataColumns.DELETE_FILE_POS.type();
    return null;
  }

  // A bound as its type's value; when the type is unknown (a dropped column), its raw bytes as base64.
  private static void bound(StringBuilder out, Type type, ByteBuffer buf) {
    if (buf == null) {
      out.append("null");
    } else if (type == null || !type.isPrimitiveType()) {
      string(out, base64(buf));
    } else {
      value(out, type, Conversions.fromByteBuffer(type, buf.duplicate()));
    }
  }

  private static void parquetFieldIds(StringBuilder out, String location, Configuration conf) throws Exception {
    MessageType schema;
    try (ParquetFileReader reader = ParquetFileReader.open(HadoopInputFile.fromPath(new Path(location), conf))) {
      schema = reader.getFooter().getFileMetaData().getSchema();
    }
    out.append('{');
    int[] count = {0};
    fieldIds(out, schema, "", count);
    out.append('}');
  }

  private static void fieldIds(StringBuilder out, GroupType group, String prefix, int[] count) {
    for (org.apache.parquet.schema.Type t : group.getFields()) {
      String path = prefix.isEmpty() ? t.getName() : prefix + "." + t.getName();
      if (count[0]++ > 0) out.append(',');
      string(out, path);
      out.append(':').append(t.getId() == null ? "null" : Integer.toString(t.getId().intValue()));
      if (!t.isPrimitive()) fieldIds(out, t.asGroupType(), path, count);
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Schema, spec, rows

  private static void schema(StringBuilder out, Schema schema) {
    out.append('[');
    List<Types.NestedField> fields = schema.columns();
    for (int i = 0; i < fields.size(); i++) {
      Types.NestedField f = fields.get(i);
      if (i > 0) out.append(',');
      out.append("{\"id\":").append(f.fieldId()).append(",\"name\":");
      string(out, f.name());
      out.append(",\"type\":");
      string(out, typeName(f.type()));
      out.append(",\"required\":").append(f.isRequired());
      if (f.doc() != null) {
        out.append(",\"doc\":");
        string(out, f.doc());
      }
      out.append('}');
    }
    out.append(']');
  }

  private static void spec(StringBuilder out, PartitionSpec spec, Schema schema) {
    out.append('[');
    List<PartitionField> fields = spec.fields();
    for (int i = 0; i < fields.size(); i++) {
      PartitionField f = fields.get(i);
      if (i > 0) out.append(',');
      out.append("{\"fieldId\":").append(f.fieldId()).append(",\"name\":");
      string(out, f.name());
      out.append(",\"transform\":");
      string(out, f.transform().toString());
      out.append(",\"sourceId\":").append(f.sourceId()).append(",\"sourceName\":");
      nullableString(out, schema.findColumnName(f.sourceId()));
      out.append('}');
    }
    out.append(']');
  }

  // Iceberg's spec names for types ("decimal(12,2)"; Java's own toString writes "decimal(12, 2)").
  static String typeName(Type t) {
    switch (t.typeId()) {
      case DECIMAL: {
        Types.DecimalType d = (Types.DecimalType) t;
        return "decimal(" + d.precision() + "," + d.scale() + ")";
      }
      case FIXED: return "fixed[" + ((Types.FixedType) t).length() + "]";
      case TIMESTAMP: return ((Types.TimestampType) t).shouldAdjustToUTC() ? "timestamptz" : "timestamp";
      case TIMESTAMP_NANO: return ((Types.TimestampNanoType) t).shouldAdjustToUTC() ? "timestamptz_ns" : "timestamp_ns";
      case STRUCT: {
        StringBuilder sb = new StringBuilder("struct<");
        List<Types.NestedField> fs = t.asStructType().fields();
        for (int i = 0; i < fs.size(); i++) {
          if (i > 0) sb.append(',');
          sb.append(fs.get(i).name()).append(':').append(typeName(fs.get(i).type()));
        }
        return sb.append('>').toString();
      }
      case LIST: return "list<" + typeName(t.asListType().elementType()) + ">";
      case MAP: return "map<" + typeName(t.asMapType().keyType()) + "," + typeName(t.asMapType().valueType()) + ">";
      default: return t.toString();
    }
  }

  private static void rows(StringBuilder out, Schema schema, List<Record> rows) {
    List<Types.NestedField> fields = schema.columns();
    rows.sort((x, y) -> {
      for (int c = 0; c < fields.size(); c++) {
        int r = compare(fields.get(c).type(), x.getField(fields.get(c).name()), y.getField(fields.get(c).name()));
        if (r != 0) return r;
      }
      return 0;
    });
    out.append('[');
    for (int i = 0; i < rows.size(); i++) {
      if (i > 0) out.append(',');
      out.append('{');
      for (int c = 0; c < fields.size(); c++) {
        if (c > 0) out.append(',');
        string(out, fields.get(c).name());
        out.append(':');
        value(out, fields.get(c).type(), rows.get(i).getField(fields.get(c).name()));
      }
      out.append('}');
    }
    out.append(']');
  }

  @SuppressWarnings({"unchecked", "rawtypes"})
  private static int compare(Type type, Object a, Object b) {
    if (a == null || b == null) return a == null ? (b == null ? 0 : -1) : 1;
    if (a instanceof OffsetDateTime && b instanceof OffsetDateTime) {
      return ((OffsetDateTime) a).toInstant().compareTo(((OffsetDateTime) b).toInstant());
    }
    if (a instanceof byte[] && b instanceof byte[]) return Arrays.compareUnsigned((byte[]) a, (byte[]) b);
    if (a instanceof ByteBuffer && b instanceof ByteBuffer) {
      return Arrays.compareUnsigned(bytes((ByteBuffer) a), bytes((ByteBuffer) b));
    }
    if (a instanceof CharSequence && b instanceof CharSequence) return a.toString().compareTo(b.toString());
    if (a instanceof Comparable && a.getClass() == b.getClass()) return ((Comparable) a).compareTo(b);
    StringBuilder x = new StringBuilder();
    StringBuilder y = new StringBuilder();
    value(x, type, a);
    value(y, type, b);
    return x.toString().compareTo(y.toString());
  }

  private static byte[] bytes(ByteBuffer b) {
    ByteBuffer d = b.duplicate();
    byte[] out = new byte[d.remaining()];
    d.get(out);
    return out;
  }

  private static String base64(ByteBuffer b) {
    return Base64.getEncoder().encodeToString(bytes(b));
  }

  // A value of an Iceberg type as JSON, by the rules at the top of this file. Takes both the generic data
  // model's objects (LocalDate, LocalDateTime, OffsetDateTime, byte[] …) and Iceberg's internal ones (days and
  // microseconds as Integer/Long, ByteBuffer, CharSequence) as partition tuples and bounds hold them.
  static void value(StringBuilder out, Type type, Object v) {
    if (v == null) {
      out.append("null");
      return;
    }
    switch (type.typeId()) {
      case BOOLEAN:
        out.append(((Boolean) v).booleanValue());
        break;
      case INTEGER:
        out.append(((Number) v).intValue());
        break;
      case LONG:
        longString(out, ((Number) v).longValue());
        break;
      case FLOAT: {
        float f = ((Number) v).floatValue();
        floating(out, f, Float.toString(f));
        break;
      }
      case DOUBLE: {
        double d = ((Number) v).doubleValue();
        floating(out, d, Double.toString(d));
        break;
      }
      case DECIMAL:
        string(out, ((BigDecimal) v).toPlainString());
        break;
      case STRING:
        string(out, v.toString());
        break;
      case UUID:
        string(out, v instanceof UUID ? v.toString() : uuidFromBytes(v));
        break;
      case BINARY:
      case FIXED:
        string(out, v instanceof byte[] ? Base64.getEncoder().encodeToString((byte[]) v) : base64((ByteBuffer) v));
        break;
      case DATE:
        string(out, v instanceof LocalDate ? v.toString() : LocalDate.ofEpochDay(((Number) v).longValue()).toString());
        break;
      case TIME:
        longString(out, v instanceof LocalTime ? ((LocalTime) v).toNanoOfDay() / 1000 : ((Number) v).longValue());
        break;
      case TIMESTAMP:
        longString(out, epoch(v, ChronoUnit.MICROS));
        break;
      case TIMESTAMP_NANO:
        longString(out, epoch(v, ChronoUnit.NANOS));
        break;
      case STRUCT: {
        List<Types.NestedField> fs = type.asStructType().fields();
        out.append('{');
        for (int i = 0; i < fs.size(); i++) {
          if (i > 0) out.append(',');
          string(out, fs.get(i).name());
          out.append(':');
          Object child = v instanceof Record ? ((Record) v).get(i) : ((StructLike) v).get(i, Object.class);
          value(out, fs.get(i).type(), child);
        }
        out.append('}');
        break;
      }
      case LIST: {
        Type element = type.asListType().elementType();
        out.append('[');
        int i = 0;
        for (Object e : (Iterable<?>) v) {
          if (i++ > 0) out.append(',');
          value(out, element, e);
        }
        out.append(']');
        break;
      }
      case MAP: {
        Type kt = type.asMapType().keyType();
        Type vt = type.asMapType().valueType();
        out.append('{');
        int i = 0;
        for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
          if (i++ > 0) out.append(',');
          StringBuilder key = new StringBuilder();
          value(key, kt, e.getKey());
          if (key.length() > 0 && key.charAt(0) == '"') out.append(key);
          else string(out, key.toString());
          out.append(':');
          value(out, vt, e.getValue());
        }
        out.append('}');
        break;
      }
      default:
        throw new UnsupportedOperationException("no JSON rendering for a value of type " + type);
    }
  }

  private static long epoch(Object v, ChronoUnit unit) {
    if (v instanceof Number) return ((Number) v).longValue();
    if (v instanceof LocalDateTime) return unit.between(Instant.EPOCH, ((LocalDateTime) v).toInstant(ZoneOffset.UTC));
    if (v instanceof OffsetDateTime) return unit.between(Instant.EPOCH, ((OffsetDateTime) v).toInstant());
    throw new IllegalArgumentException("not a timestamp: " + v.getClass().getName());
  }

  private static String uuidFromBytes(Object v) {
    ByteBuffer b = v instanceof byte[] ? ByteBuffer.wrap((byte[]) v) : ((ByteBuffer) v).duplicate();
    return new UUID(b.getLong(), b.getLong()).toString();
  }

  // Java's shortest repr that reads back to the same float/double; ".0" endings and exponents are valid JSON.
  private static void floating(StringBuilder out, double d, String text) {
    if (Double.isNaN(d)) out.append("\"NaN\"");
    else if (d == Double.POSITIVE_INFINITY) out.append("\"Infinity\"");
    else if (d == Double.NEGATIVE_INFINITY) out.append("\"-Infinity\"");
    else out.append(text.replace("E", "e"));
  }

  // ---------------------------------------------------------------------------------------------------------
  // JSON text

  private static void longString(StringBuilder out, long v) {
    out.append('"').append(v).append('"');
  }

  private static void nullableLong(StringBuilder out, Long v) {
    if (v == null) out.append("null");
    else longString(out, v);
  }

  private static void nullableString(StringBuilder out, String s) {
    if (s == null) out.append("null");
    else string(out, s);
  }

  private static void stringMap(StringBuilder out, Map<String, String> m) {
    out.append('{');
    int i = 0;
    for (Map.Entry<String, String> e : new TreeMap<>(m).entrySet()) {
      if (i++ > 0) out.append(',');
      string(out, e.getKey());
      out.append(':');
      nullableString(out, e.getValue());
    }
    out.append('}');
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
