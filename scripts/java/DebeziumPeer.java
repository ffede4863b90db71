import io.debezium.embedded.Connect;
import io.debezium.engine.DebeziumEngine;
import io.debezium.engine.RecordChangeEvent;
import io.debezium.engine.format.ChangeEventFormat;
import java.io.BufferedWriter;
import java.io.FileOutputStream;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.source.SourceRecord;

/**
 * Debezium's own connector, run by its embedded engine, as a peer for Sluice's Debezium-fidelity
 * test (test/debezium/). Every record is turned into JSON by Kafka Connect's JsonConverter, with
 * schemas enabled and disabled, and written as one line of JSON to the output file:
 *   {"topic":…,"key":…,"value":…,"keyPlain":…,"valuePlain":…}
 * where key/value are the converter's bytes (as UTF-8 text, or null) with schemas.enable=true and
 * keyPlain/valuePlain with schemas.enable=false.
 *
 *   java -cp … DebeziumPeer <out.jsonl> <stop topic> <timeout seconds> key=value …
 *
 * The key=value pairs are the connector's properties (connector.class, database.*, topic.prefix…);
 * those named converter.* configure the JsonConverters (without the prefix, e.g.
 * converter.replace.null.with.default=false). Offsets and schema history stay in memory. The program stops, exit 0, once it has written a
 * record of the stop topic; exit 2 when the timeout passes first, exit 1 when the engine fails.
 */
public class DebeziumPeer {
  public static void main(String[] args) throws Exception {
    if (args.length < 3) {
      System.err.println("usage: DebeziumPeer <out.jsonl> <stop topic> <timeout seconds> key=value ...");
      System.exit(64);
    }
    // The connectors' SLF4J logging goes to java.util.logging: warnings and errors (or -Dpeer.log=INFO).
    java.util.logging.Level level = java.util.logging.Level.parse(System.getProperty("peer.log", "WARNING"));
    java.util.logging.Logger root = java.util.logging.Logger.getLogger("");
    root.setLevel(level);
    for (java.util.logging.Handler h : root.getHandlers()) h.setLevel(level);
    String out = args[0];
    String stopTopic = args[1];
    long timeout = Long.parseLong(args[2]);
    Properties props = new Properties();
    props.setProperty("name", "sluice-peer");
    props.setProperty("offset.storage", "org.apache.kafka.connect.storage.MemoryOffsetBackingStore");
    props.setProperty("offset.flush.interval.ms", "0");
    props.setProperty("record.processing.threads", "1");
    Map<String, String> conv = new java.util.HashMap<>();
    for (int i = 3; i < args.length; i++) {
      int eq = args[i].indexOf('=');
      if (eq <= 0) throw new IllegalArgumentException("not key=value: " + args[i]);
      String k = args[i].substring(0, eq);
      if (k.startsWith("converter.")) conv.put(k.substring("converter.".length()), args[i].substring(eq + 1));
      else props.setProperty(k, args[i].substring(eq + 1));
    }
    JsonConverter key = converter(true, true, conv);
    JsonConverter value = converter(true, false, conv);
    JsonConverter keyPlain = converter(false, true, conv);
    JsonConverter valuePlain = converter(false, false, conv);
    com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
    BufferedWriter w = new BufferedWriter(new OutputStreamWriter(new FileOutputStream(out), StandardCharsets.UTF_8));
    CountDownLatch done = new CountDownLatch(1);
    AtomicReference<Throwable> failure = new AtomicReference<>();

    DebeziumEngine.ChangeConsumer<RecordChangeEvent<SourceRecord>> consumer = (List<RecordChangeEvent<SourceRecord>> records, DebeziumEngine.RecordCommitter<RecordChangeEvent<SourceRecord>> committer) -> {
      for (RecordChangeEvent<SourceRecord> rec : records) {
        SourceRecord r = rec.record();
        Map<String, String> line = new java.util.LinkedHashMap<>();
        line.put("topic", r.topic());
        line.put("key", text(key.fromConnectData(r.topic(), r.keySchema(), r.key())));
        line.put("value", text(value.fromConnectData(r.topic(), r.valueSchema(), r.value())));
        line.put("keyPlain", text(keyPlain.fromConnectData(r.topic(), r.keySchema(), r.key())));
        line.put("valuePlain", text(valuePlain.fromConnectData(r.topic(), r.valueSchema(), r.value())));
        try {
          w.write(json.writeValueAsString(line));
          w.write('\n');
          w.flush();
        } catch (java.io.IOException e) {
          throw new RuntimeException(e);
        }
        committer.markProcessed(rec);
        if (r.topic().equals(stopTopic)) done.countDown();
      }
      committer.markBatchFinished();
    };

    DebeziumEngine<RecordChangeEvent<SourceRecord>> engine = DebeziumEngine.create(ChangeEventFormat.of(Connect.class))
        .using(props)
        .notifying(consumer)
        .using((success, message, error) -> {
          if (!success) failure.set(error != null ? error : new RuntimeException(message));
          done.countDown();
        })
        .build();
    Thread t = new Thread(engine, "debezium-engine");
    t.start();
    boolean finished = done.await(timeout, TimeUnit.SECONDS);
    int code = 0;
    if (failure.get() != null) {
      System.err.println("debezium-peer: engine failed: " + failure.get());
      failure.get().printStackTrace();
      code = 1;
    } else if (!finished) {
      System.err.println("debezium-peer: no record of " + stopTopic + " within " + timeout + " s");
      code = 2;
    }
    engine.close();
    t.join(30_000);
    w.close();
    System.err.println("debezium-peer: done");
    System.exit(code);
  }

  private static JsonConverter converter(boolean schemas, boolean isKey, Map<String, String> extra) {
    JsonConverter c = new JsonConverter();
    Map<String, String> cfg = new java.util.HashMap<>(extra);
    cfg.put("schemas.enable", String.valueOf(schemas));
    c.configure(cfg, isKey);
    return c;
  }

  private static String text(byte[] b) {
    return b == null ? null : new String(b, StandardCharsets.UTF_8);
  }
}
