/** The source conformance suite (conformance.ts), run for each source. */
import { join } from 'node:path';
import { mysqlPipelineYaml, useMysqlDatabase } from '../helpers/mysql.ts';
import { pipelineYaml, useDatabase } from '../helpers/pipeline.ts';
import { sourceConformance } from './conformance.ts';

sourceConformance({
  name: 'PostgreSQL',
  database(big) {
    const f = useDatabase(`
      CREATE TABLE big (id int PRIMARY KEY, v int NOT NULL, pad text);
      CREATE TABLE hot (id int PRIMARY KEY, v int NOT NULL, note text);
      INSERT INTO big SELECT g, 1, repeat('p', 200) FROM generate_series(1, ${big}) g;
      INSERT INTO hot SELECT g, 1, 'n' FROM generate_series(1, 200) g;
    `);
    return {
      exec: (sql, params = []) => {
        let n = 0;
        return f.db.client.query(sql.replace(/\?/g, () => `$${++n}`), params);
      },
      versions: async (t) => new Map((await f.db.client.query(`SELECT id, v FROM ${t}`)).rows.map((r: any) => [r.id, r.v])),
      dir: () => f.tmp.dir,
      yaml: (name, source, top) => pipelineYaml(name, f.db.name, f.tmp.dir, `snapshotFetchSize: 2000\n${source}`, top),
      topic: (name, t) => `${name}.public.${t}`,
    };
  },
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
