/** The source conformance suite (conformance.ts), run for each source. */
import { join } from 'node:path';
import { mysqlPipelineYaml, useMysqlDatabase } from '../helpers/mysql.ts';
import { sourceConformance } from './conformance.ts';
import { postgresSuiteDatabase } from './postgres-harness.ts';

sourceConformance({
  name: 'PostgreSQL',
  database: (big) => postgresSuiteDatabase(big),
});

sourceConformance({
  name: 'MySQL/MariaDB',
  database(big) {
    const f = useMysqlDatabase(`
      CREATE TABLE big (id INT PRIMARY KEY, v INT NOT NULL, pad TEXT);
      CREATE TABLE hot (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(20));
      INSERT INTO big SELECT seq, 1, REPEAT('p', 200) FROM seq_1_to_${big};
      INSERT INTO hot SELECT seq, 1, 'n' FROM seq_1_to_200;
    `);
    return {
      exec: (sql, params) => f.q(sql, params),
      versions: async (t) => new Map(((await f.q(`SELECT id, v FROM ${t}`)) as any[]).map((r: any) => [r.id, r.v])),
      dir: () => join(f.tmp.dir),
      yaml: (name, source, top) => mysqlPipelineYaml(name, f.name, f.tmp.dir, source, top),
      topic: (name, t) => `${name}.${f.name}.${t}`,
    };
  },
});
