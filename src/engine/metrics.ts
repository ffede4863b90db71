import { ComponentMetrics, Registry } from '../core/metrics.ts';

/** Metrics of one pipeline: the standard component set for its source stage. */
export class PipelineMetrics extends ComponentMetrics {
  constructor(pipeline: string, registry = new Registry()) {
    super(registry, { pipeline, component: 'source' });
  }
  render(): string {
    return this.registry.render();
  }
}
