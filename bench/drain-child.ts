/**
 * The pipeline of a benchmark in a process of its own: drains `records` records into its log and
 * prints the seconds, its peak RSS and its RSS once loaded, as JSON on stdout.
 *
 *   node bench/out/js/bench/drain-child.js <pipeline.yaml> <records>   (compiled by drainInChild; node --import tsx bench/drain-child.ts runs it from the sources)
 */
import { loadConfig } from '../src/config/index.ts';
import { drainSeconds } from './common.ts';

const [path, records] = process.argv.slice(2);
const cfg = await loadConfig(path);
const loadedRssMiB = process.memoryUsage().rss / 1048576;
const seconds = await drainSeconds(cfg, Number(records));
process.stdout.write(JSON.stringify({ seconds, peakRssMiB: process.resourceUsage().maxRSS / 1024, loadedRssMiB }));
