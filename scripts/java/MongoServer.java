import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoVersion;
import java.util.List;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;

/**
 * A MongoDB-wire-compatible server for Sluice's tests: mongo-java-server with its in-memory
 * backend. Its newest built-in version (5.0) reports wire version 8, below the 9 (MongoDB 4.4)
 * that the Node.js driver 7 requires, so the server reports 4.4 / wire 9 instead: the oldest
 * version the driver accepts, so it uses no newer protocol features than it must.
 * Usage: java -cp <jars>:<classes> MongoServer [port] [host] [oplog]. With `oplog` the server
 * keeps an oplog and answers change streams (the MongoDB source's tests); without it, writes cost
 * no oplog memory (the document sink's bulk tests). Prints one ready line, then serves until the
 * process is stopped.
 */
public final class MongoServer {
  private MongoServer() {}

  private static final MongoVersion MONGO_4_4 = new MongoVersion() {
    @Override
    public List<Integer> getVersionArray() {
      return List.of(4, 4, 0);
    }

    @Override
    public int getWireVersion() {
      return 9;
    }
  };

  public static void main(String[] args) {
    int port = args.length > 0 ? Integer.parseInt(args[0]) : 27017;
    String host = args.length > 1 ? args[1] : "127.0.0.1";
    MongoBackend backend = new MemoryBackend().version(MONGO_4_4);
    boolean oplog = args.length > 2 && args[2].equals("oplog");
    if (oplog) backend.enableOplog();
    de.bwaldvogel.mongo.MongoServer server = new de.bwaldvogel.mongo.MongoServer(backend);
    server.bind(host, port);
    Runtime.getRuntime().addShutdownHook(new Thread(server::shutdownNow));
    System.out.println("mongo-java-server ready on " + host + ":" + port + (oplog ? " with an oplog" : ""));
    System.out.flush();
  }
}
