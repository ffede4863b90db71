// Apache Flink peer of the processing benchmark: per-key tumbling event-time windows over a file of
// JSON events, run on a local MiniCluster. Built and run by setup.sh / run.sh beside this file.
//
//   java -cp <classpath> WindowJob --input events.jsonl --output out.jsonl
//        [--parallelism 2] [--size-ms 60000] [--delay-ms 5000]
//
// Input: one event a line, {"k":"k123","v":12.5,"ts":1800000000123} (k key, v value, ts event time
// in ms). Event time comes from ts with a bounded-out-of-orderness watermark of --delay-ms; events
// are keyed by k into tumbling windows of --size-ms, aggregated incrementally (count, sum, max of v)
// by an AggregateFunction; a ProcessWindowFunction only attaches the window bounds. Each window is
// written as one line, {"k":"k123","window_start":...,"window_end":...,"n":3,"sum":37.5,"max":20},
// by one writer. Flink fires every window at the end of input (the final watermark is MAX), so
// windows that the watermark had not yet passed are in the output too.
// At the end, stdout gets one line:
//   FLINK_RESULT {"events":<read>,"windows":<written>,"ms":<wall>,"net_ms":<job>}
// ms being the wall time of env.execute() (local cluster start, job submission, the job, and the
// cluster's shutdown), net_ms the job's own run time as Flink reports it (JobExecutionResult).

import java.io.BufferedWriter;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.time.Duration;

import org.apache.flink.api.common.JobExecutionResult;
import org.apache.flink.api.common.RuntimeExecutionMode;
import org.apache.flink.api.common.accumulators.LongCounter;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.AggregateFunction;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichFlatMapFunction;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.api.java.tuple.Tuple3;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.file.src.FileSource;
import org.apache.flink.connector.file.src.reader.TextLineInputFormat;
import org.apache.flink.core.fs.Path;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.windowing.ProcessWindowFunction;
import org.apache.flink.streaming.api.windowing.assigners.TumblingEventTimeWindows;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.util.Collector;

public class WindowJob {

  /** Running aggregate of one key's window (a Flink POJO: public fields, no-argument constructor). */
  public static class Acc {
    public long n;
    public double sum;
    public double max = Double.NEGATIVE_INFINITY;

    public Acc() {}
  }

  public static void main(String[] args) throws Exception {
    String input = null, output = null;
    int parallelism = 2;
    long sizeMs = 60_000, delayMs = 5_000;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (i + 1 >= args.length) usage("missing value for " + a);
      switch (a) {
        case "--input": input = args[++i]; break;
        case "--output": output = args[++i]; break;
        case "--parallelism": parallelism = Integer.parseInt(args[++i]); break;
        case "--size-ms": sizeMs = Long.parseLong(args[++i]); break;
        case "--delay-ms": delayMs = Long.parseLong(args[++i]); break;
        default: usage("unknown argument " + a);
      }
    }
    if (input == null || output == null) usage("--input and --output are required");
    if (!Files.isRegularFile(Paths.get(input))) usage("no such input file: " + input);

    StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(parallelism, new Configuration());
    env.setRuntimeMode(RuntimeExecutionMode.STREAMING); // event-time watermarks, as the engine does
    env.getConfig().enableObjectReuse(); // no function here keeps a reference to its input

    FileSource<String> source = FileSource
        .forRecordStreamFormat(new TextLineInputFormat(), new Path(Paths.get(input).toAbsolutePath().toUri()))
        .build();
    final long delay = delayMs;
    env.fromSource(source, WatermarkStrategy.noWatermarks(), "events-file")
        // One file is one split: a single reader, so parse and stamp chained with it, at 1.
        .setParallelism(1)
        .flatMap(new Parse()).name("parse").setParallelism(1)
        .assignTimestampsAndWatermarks(WatermarkStrategy
            .<Tuple3<String, Double, Long>>forBoundedOutOfOrderness(Duration.ofMillis(delay))
            .withTimestampAssigner((e, previous) -> e.f2))
        .name("event-time").setParallelism(1)
        .keyBy(e -> e.f0)
        .window(TumblingEventTimeWindows.of(Duration.ofMillis(sizeMs)))
        .aggregate(new Agg(), new Bounds()).name("window")
        .sinkTo(new LineFileSink(Paths.get(output).toAbsolutePath().toString())).name("output-file").setParallelism(1);

    long t0 = System.nanoTime();
    JobExecutionResult result = env.execute("sluice-processing-window");
    long ms = (System.nanoTime() - t0) / 1_000_000;
    Long events = result.getAccumulatorResult("events");
    Long windows = result.getAccumulatorResult("windows");
    System.err.println("[flink] job net runtime " + result.getNetRuntime() + " ms, wall " + ms + " ms, parallelism " + parallelism);
    System.out.println("FLINK_RESULT {\"events\":" + (events == null ? 0 : events) + ",\"windows\":"
        + (windows == null ? 0 : windows) + ",\"ms\":" + ms + ",\"net_ms\":" + result.getNetRuntime() + "}");
  }

  static void usage(String why) {
    System.err.println("WindowJob: " + why);
    System.err.println("usage: WindowJob --input events.jsonl --output out.jsonl [--parallelism 2] [--size-ms 60000] [--delay-ms 5000]");
    System.exit(2);
  }

  /** One JSON line to (k, v, ts), by hand; counts the events read. */
  public static class Parse extends RichFlatMapFunction<String, Tuple3<String, Double, Long>> {
    private transient LongCounter events;

    @Override
    public void open(OpenContext ctx) {
      events = new LongCounter();
      getRuntimeContext().addAccumulator("events", events);
    }

    @Override
    public void flatMap(String line, Collector<Tuple3<String, Double, Long>> out) {
      int len = line.length();
      int i = 0;
      while (i < len && line.charAt(i) <= ' ') i++;
      if (i == len) return; // blank line
      if (line.charAt(i) != '{') throw new IllegalArgumentException("not a JSON object: " + line);
      i++;
      String k = null;
      double v = Double.NaN;
      long ts = Long.MIN_VALUE;
      while (true) {
        while (i < len && (line.charAt(i) <= ' ' || line.charAt(i) == ',')) i++;
        if (i >= len || line.charAt(i) == '}') break;
        if (line.charAt(i) != '"') throw new IllegalArgumentException("bad field name at " + i + ": " + line);
        int ne = line.indexOf('"', i + 1);
        String name = line.substring(i + 1, ne);
        i = ne + 1;
        while (i < len && (line.charAt(i) <= ' ' || line.charAt(i) == ':')) i++;
        if (line.charAt(i) == '"') { // string value (keys carry no escapes in the benchmark's files)
          int ve = i + 1;
          while (line.charAt(ve) != '"') ve += line.charAt(ve) == '\\' ? 2 : 1;
          String s = line.substring(i + 1, ve);
          if (s.indexOf('\\') >= 0) s = unescape(s);
          if (name.equals("k")) k = s;
          i = ve + 1;
        } else { // number (or literal)
          int ve = i;
          while (ve < len && line.charAt(ve) != ',' && line.charAt(ve) != '}' && line.charAt(ve) > ' ') ve++;
          if (name.equals("v")) v = Double.parseDouble(line.substring(i, ve));
          else if (name.equals("ts")) ts = parseLong(line, i, ve);
          i = ve;
        }
      }
      if (k == null || ts == Long.MIN_VALUE || Double.isNaN(v)) throw new IllegalArgumentException("event lacks k, v or ts: " + line);
      events.add(1L);
      out.collect(Tuple3.of(k, v, ts));
    }

    static long parseLong(String s, int from, int to) {
      long r = 0;
      boolean neg = s.charAt(from) == '-';
      for (int j = neg ? from + 1 : from; j < to; j++) {
        char c = s.charAt(j);
        if (c < '0' || c > '9') return (long) Double.parseDouble(s.substring(from, to)); // 1.8e12 and the like
        r = r * 10 + (c - '0');
      }
      return neg ? -r : r;
    }

    static String unescape(String s) {
      StringBuilder b = new StringBuilder(s.length());
      for (int j = 0; j < s.length(); j++) {
        char c = s.charAt(j);
        if (c != '\\') { b.append(c); continue; }
        char e = s.charAt(++j);
        switch (e) {
          case 'n': b.append('\n'); break;
          case 't': b.append('\t'); break;
          case 'r': b.append('\r'); break;
          case 'b': b.append('\b'); break;
          case 'f': b.append('\f'); break;
          case 'u': b.append((char) Integer.parseInt(s.substring(j + 1, j + 5), 16)); j += 4; break;
          default: b.append(e);
        }
      }
      return b.toString();
    }
  }

  /** Incremental count, sum and max of v. */
  public static class Agg implements AggregateFunction<Tuple3<String, Double, Long>, Acc, Acc> {
    @Override public Acc createAccumulator() { return new Acc(); }

    @Override
    public Acc add(Tuple3<String, Double, Long> e, Acc a) {
      double v = e.f1;
      a.n++;
      a.sum += v;
      if (v > a.max) a.max = v;
      return a;
    }

    @Override public Acc getResult(Acc a) { return a; }

    @Override
    public Acc merge(Acc a, Acc b) {
      a.n += b.n;
      a.sum += b.sum;
      if (b.max > a.max) a.max = b.max;
      return a;
    }
  }

  /** Attaches the window's bounds to its one aggregate and formats the output line; counts windows. */
  public static class Bounds extends ProcessWindowFunction<Acc, String, String, TimeWindow> {
    private transient LongCounter windows;

    @Override
    public void open(OpenContext ctx) {
      windows = new LongCounter();
      getRuntimeContext().addAccumulator("windows", windows);
    }

    @Override
    public void process(String key, Context ctx, Iterable<Acc> aggs, Collector<String> out) {
      Acc a = aggs.iterator().next();
      TimeWindow w = ctx.window();
      StringBuilder b = new StringBuilder(96);
      b.append("{\"k\":");
      quote(b, key);
      b.append(",\"window_start\":").append(w.getStart())
          .append(",\"window_end\":").append(w.getEnd())
          .append(",\"n\":").append(a.n)
          .append(",\"sum\":");
      num(b, a.sum);
      b.append(",\"max\":");
      num(b, a.max);
      b.append('}');
      windows.add(1L);
      out.collect(b.toString());
    }

    static void quote(StringBuilder b, String s) {
      b.append('"');
      for (int j = 0; j < s.length(); j++) {
        char c = s.charAt(j);
        if (c == '"' || c == '\\') b.append('\\').append(c);
        else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
        else b.append(c);
      }
      b.append('"');
    }

    /** A number as JavaScript's JSON.stringify writes it where that is easy: 20 not 20.0, no exponent. */
    static void num(StringBuilder b, double d) {
      if (d == Math.rint(d) && Math.abs(d) < 1e15) { b.append((long) d); return; }
      if (Double.isNaN(d) || Double.isInfinite(d)) { b.append("null"); return; }
      String s = Double.toString(d);
      b.append(s.indexOf('E') >= 0 ? new BigDecimal(s).toPlainString() : s);
    }
  }

  /** All lines into one file through a BufferedWriter (run it at parallelism 1). */
  public static class LineFileSink implements Sink<String> {
    private final String path;

    public LineFileSink(String path) { this.path = path; }

    @Override
    public SinkWriter<String> createWriter(WriterInitContext ctx) throws IOException {
      final BufferedWriter w = Files.newBufferedWriter(Paths.get(path), StandardCharsets.UTF_8);
      return new SinkWriter<String>() {
        @Override
        public void write(String line, Context c) throws IOException {
          w.write(line);
          w.write('\n');
        }

        @Override public void flush(boolean endOfInput) throws IOException { w.flush(); }

        @Override public void close() throws IOException { w.close(); }
      };
    }
  }
}
