/**
 * Consumer-group membership on Kafka (the classic group protocol: JoinGroup, SyncGroup, Heartbeat,
 * LeaveGroup), so that several `sluice` processes running the same sink share its topics'
 * partitions. Only membership: which partitions this member reads. Offsets are not committed to
 * the group; a sink keeps them in its target, in the transaction of the data (sinks/types.ts).
 *
 * The protocol is eager: when a member comes, goes or changes its topics, the coordinator asks
 * every member to rejoin and waits (up to `rebalanceTimeout`) until each has; a member stops
 * applying its partitions before it rejoins. So no two live members ever apply one partition at a
 * time. The leader of each generation (the first member to join) assigns: every partition of the
 * members' topics, sorted, dealt round-robin over the members sorted by id, each to a member that
 * reads its topic.
 */
import type { GroupMember, GroupGeneration, TopicPartition } from '../types.ts';
import { type KBroker, type KCluster, kafkaError, kafkaType } from './client.ts';

type KafkaModule = typeof import('kafkajs');

/** The broker calls used here (kafkajs's Broker, reached as in client.ts). */
interface GroupBroker extends KBroker {
  joinGroup(req: { groupId: string; sessionTimeout: number; rebalanceTimeout: number; memberId: string; protocolType: string; groupProtocols: { name: string; metadata: Buffer }[] }): Promise<{ generationId: number; leaderId: string; memberId: string; groupProtocol: string; members: { memberId: string; memberMetadata: Buffer }[] }>;
  syncGroup(req: { groupId: string; generationId: number; memberId: string; groupAssignment: { memberId: string; memberAssignment: Buffer }[] }): Promise<{ memberAssignment: Buffer }>;
  heartbeat(req: { groupId: string; groupGenerationId: number; memberId: string }): Promise<unknown>;
  leaveGroup(req: { groupId: string; memberId: string }): Promise<unknown>;
}

export interface GroupSettings {
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  heartbeatMs: number;
}

/** The assignment protocol's name: every member of a Sluice group speaks only this one. */
const PROTOCOL = 'sluice-roundrobin';
/** Errors that mean: join again (the group moved on, or this member is unknown to it). */
const REJOIN = new Set(['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'FENCED_INSTANCE_ID']);
/** Errors that mean: find the coordinator again. */
const RECOORDINATE = new Set(['NOT_COORDINATOR', 'NOT_COORDINATOR_FOR_GROUP', 'COORDINATOR_NOT_AVAILABLE', 'GROUP_COORDINATOR_NOT_AVAILABLE', 'COORDINATOR_LOAD_IN_PROGRESS', 'GROUP_LOAD_IN_PROGRESS']);

/** Deals `parts` round-robin over `members` (sorted by id), each partition to a member that reads its topic. */
export function assignRoundRobin(members: { id: string; topics: string[] }[], parts: TopicPartition[]): Map<string, TopicPartition[]> {
  const sorted = [...members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const out = new Map<string, TopicPartition[]>(sorted.map((m) => [m.id, []]));
  const list = [...parts].sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
  let turn = 0;
  for (const p of list) {
    for (let i = 0; i < sorted.length; i++) {
      const m = sorted[(turn + i) % sorted.length];
      if (!m.topics.includes(p.topic)) continue;
      out.get(m.id)!.push(p);
      turn = (turn + i + 1) % sorted.length;
      break;
    }
  }
  return out;
}

export class KafkaGroupMember implements GroupMember {
  private memberId = '';
  private coordinator: GroupBroker | null = null;
  private current: { generationId: number; revoke: AbortController; timer: NodeJS.Timeout } | null = null;
  private closed = false;

  /**
   * @param groupId the group's id on the brokers (with the log's topic prefix)
   * @param name the group as the caller knows it (for messages)
   * @param kname Kafka's name of a log topic; `partitionsOf` its partition count (null: gone)
   */
  constructor(
    private readonly k: KafkaModule,
    private readonly cluster: KCluster,
    private readonly groupId: string,
    readonly name: string,
    private readonly brokers: string[],
    private readonly settings: GroupSettings,
    private readonly kname: (topic: string) => string,
    private readonly topicOf: (kname: string) => string | null,
    private readonly partitionsOf: (topic: string) => Promise<number | null>,
  ) {}

  get id(): string {
    return this.memberId;
  }

  /**
   * Joins with `topics` (or rejoins after a revocation or to change them) and returns this
   * member's partitions once the group has settled. Retries what Kafka says to retry; a stop of
   * `signal` ends the wait with what it was waiting for unresolved (the caller is stopping).
   */
  async join(topics: string[], signal?: AbortSignal): Promise<GroupGeneration> {
    this.stopHeartbeat();
    for (let attempt = 1; ; attempt++) {
      if (this.closed) throw kafkaError(new Error('the group member is closed'), `joining group ${this.name}`, this.brokers);
      try {
        return await this.joinOnce(topics);
      } catch (e) {
        const type = kafkaType(e);
        if (type === 'UNKNOWN_MEMBER_ID' || type === 'FENCED_INSTANCE_ID') this.memberId = '';
        if (type && RECOORDINATE.has(type)) this.coordinator = null;
        const again = (type && (REJOIN.has(type) || RECOORDINATE.has(type))) || kafkaError(e, '', this.brokers).retriable;
        if (!again || attempt >= 30 || signal?.aborted) throw kafkaError(e, `joining consumer group ${this.name}`, this.brokers);
        this.coordinator = type && REJOIN.has(type) ? this.coordinator : null;
        await new Promise((r) => setTimeout(r, Math.min(100 * attempt, 1000)));
      }
    }
  }

  private async coord(): Promise<GroupBroker> {
    this.coordinator ??= (await this.cluster.findGroupCoordinator({ groupId: this.groupId })) as GroupBroker;
    return this.coordinator;
  }

  private async joinOnce(topics: string[]): Promise<GroupGeneration> {
    const { MemberMetadata, MemberAssignment } = this.k.AssignerProtocol;
    const coordinator = await this.coord();
    const knames = topics.map(this.kname).sort();
    const joined = await coordinator.joinGroup({
      groupId: this.groupId,
      sessionTimeout: this.settings.sessionTimeoutMs,
      rebalanceTimeout: this.settings.rebalanceTimeoutMs,
      memberId: this.memberId,
      protocolType: 'consumer',
      groupProtocols: [{ name: PROTOCOL, metadata: MemberMetadata.encode({ version: 0, topics: knames, userData: Buffer.alloc(0) }) }],
    });
    this.memberId = joined.memberId;
    let groupAssignment: { memberId: string; memberAssignment: Buffer }[] = [];
    if (joined.leaderId === joined.memberId) {
      const members = joined.members.map((m) => ({ id: m.memberId, topics: MemberMetadata.decode(m.memberMetadata)?.topics ?? [] }));
      const parts: TopicPartition[] = [];
      for (const kn of new Set(members.flatMap((m) => m.topics))) {
        const topic = this.topicOf(kn);
        const n = topic === null ? null : await this.partitionsOf(topic);
        for (let p = 0; p < (n ?? 0); p++) parts.push({ topic: kn, partition: p });
      }
      const dealt = assignRoundRobin(members, parts);
      groupAssignment = [...dealt].map(([memberId, list]) => {
        const assignment: Record<string, number[]> = {};
        for (const p of list) (assignment[p.topic] ??= []).push(p.partition);
        return { memberId, memberAssignment: MemberAssignment.encode({ version: 0, assignment, userData: Buffer.alloc(0) }) };
      });
    }
    const synced = await coordinator.syncGroup({ groupId: this.groupId, generationId: joined.generationId, memberId: this.memberId, groupAssignment });
    const decoded = synced.memberAssignment?.length ? MemberAssignment.decode(synced.memberAssignment) : null;
    const assignment: TopicPartition[] = [];
    for (const [kn, list] of Object.entries(decoded?.assignment ?? {})) {
      const topic = this.topicOf(kn);
      if (topic !== null) for (const partition of list) assignment.push({ topic, partition });
    }
    const revoke = new AbortController();
    this.current = { generationId: joined.generationId, revoke, timer: setInterval(() => void this.beat(), this.settings.heartbeatMs) };
    this.current.timer.unref();
    this.lastBeat = Date.now();
    return { generation: joined.generationId, memberId: this.memberId, members: joined.members.length || undefined, assignment, revoked: revoke.signal };
  }

  private lastBeat = 0;
  private beating = false;

  /** One heartbeat; a rebalance (or no answer for a session timeout) revokes the generation. */
  private async beat(): Promise<void> {
    const cur = this.current;
    if (!cur || this.beating || cur.revoke.signal.aborted) return;
    this.beating = true;
    try {
      const coordinator = await this.coord();
      await coordinator.heartbeat({ groupId: this.groupId, groupGenerationId: cur.generationId, memberId: this.memberId });
      this.lastBeat = Date.now();
    } catch (e) {
      const type = kafkaType(e);
      if (type && REJOIN.has(type)) {
        if (type !== 'REBALANCE_IN_PROGRESS') this.memberId = type === 'UNKNOWN_MEMBER_ID' ? '' : this.memberId;
        this.revoke(cur);
        return;
      }
      if (type && RECOORDINATE.has(type)) this.coordinator = null;
      // No answer for a whole session: the group has surely moved on without this member.
      if (Date.now() - this.lastBeat >= this.settings.sessionTimeoutMs) {
        this.memberId = '';
        this.coordinator = null;
        this.revoke(cur);
      }
    } finally {
      this.beating = false;
    }
  }

  private revoke(cur: NonNullable<KafkaGroupMember['current']>): void {
    clearInterval(cur.timer);
    cur.revoke.abort();
    if (this.current === cur) this.current = null;
  }

  /** Whether this member's generation is still current as far as it knows: heartbeats answered within the session timeout. */
  get live(): boolean {
    return !!this.current && !this.current.revoke.signal.aborted && Date.now() - this.lastBeat < this.settings.sessionTimeoutMs;
  }

  private stopHeartbeat(): void {
    if (this.current) this.revoke(this.current);
  }

  /** Leaves the group, so the others take its partitions at once rather than after the session timeout. */
  async leave(): Promise<void> {
    this.closed = true;
    this.stopHeartbeat();
    if (!this.memberId) return;
    try {
      const coordinator = await this.coord();
      await coordinator.leaveGroup({ groupId: this.groupId, memberId: this.memberId });
    } catch {
      // The session times out instead.
    }
    this.memberId = '';
  }
}
