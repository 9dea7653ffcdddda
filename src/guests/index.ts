/** The guests layer's public surface: kernels, devices, configurations, and the ring protocol. */
export type { GuestAction, GuestKernel, GuestVerdict, SharedRegion } from './kernel.js';
export { BlkBench, BLKBENCH_OPERATIONS, type BlkBenchOptions, type BlockStep } from './blkbench.js';
export {
  UnknownConfigurationError,
  configurationNames,
  getConfiguration,
  type Configuration,
  type DomainKind,
  type DomainPlan,
} from './configurations.js';
export {
  DISK_BLOCK_COUNT,
  Disk,
  NET_LOSS_LIMIT,
  NET_WINDOW_NS,
  NIC_BUFFER_PACKETS,
  Nic,
  PING_DEADLINE_NS,
  PING_INTERVAL_NS,
  evaluateNetBench,
  pingPayload,
  pingReply,
  type DevicePlatform,
  type DiskCompletion,
  type DiskOperation,
  type DiskOptions,
  type DiskRequest,
  type DiskState,
  type NetEvaluationOptions,
  type NetReport,
  type NetWindowReport,
  type NicOptions,
  type NicState,
  type Packet,
  type ServiceInterruption,
  type Transmission,
} from './devices.js';
export { createKernel, type KernelByKind, type KernelOptionsByKind } from './factory.js';
export { TIMER_GRACE_NS } from './kernel-base.js';
export { NetBench, type NetBenchOptions } from './netbench.js';
export { NET_BACKLOG_LIMIT, PRIVVM_TIMER_PERIOD_US, PrivVm, type PrivVmOptions } from './privvm.js';
export { BLOCKS_PER_DOMAIN, BLOCK_READ, BLOCK_TRIM, BLOCK_WRITE, NET_PING, STATUS_OK } from './protocol.js';
export { UnixBench, type UnixBenchOptions } from './unixbench.js';
