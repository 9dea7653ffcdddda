/**
 * Word-addressed hypervisor memory: one flat Int32Array divided into segments with permissions.
 *
 * Permissions are kept per page so the interpreter checks an access with one array lookup.
 * Addresses that no segment maps fault, and the first page is never mapped (a null guard), so a
 * jump to 0 or a load through a null pointer faults at once, as on real hardware.
 */

export const PAGE_SHIFT = 6;
export const PAGE_WORDS = 1 << PAGE_SHIFT;

/** protection keys a page may carry, as on x86 */
export const PROTECTION_KEYS = 16;

export const PERMISSION_READ = 1;
export const PERMISSION_WRITE = 2;
export const PERMISSION_EXECUTE = 4;

/**
 * `directMap`: memory the hypervisor maps but keeps none of its own state in (on Xen, the direct
 * map of the rest of the host's RAM: free pages and the guests' memory). A wild access lands
 * there without faulting; nothing the model runs reads it back.
 */
export type SegmentKind = 'code' | 'static' | 'heap' | 'stack' | 'directMap';

export interface Segment {
  readonly name: string;
  readonly kind: SegmentKind;
  /** first word address; a multiple of PAGE_WORDS */
  readonly base: number;
  /** length in words; a multiple of PAGE_WORDS */
  readonly sizeWords: number;
}

export function segmentPermission(kind: SegmentKind): number {
  switch (kind) {
    case 'code':
      return PERMISSION_READ | PERMISSION_EXECUTE;
    case 'static':
    case 'heap':
    case 'stack':
    case 'directMap':
      return PERMISSION_READ | PERMISSION_WRITE;
  }
}

export class Memory {
  readonly words: Int32Array;
  /** per page: PERMISSION_* bits; 0 means unmapped */
  readonly pagePermissions: Uint8Array;
  /**
   * per key granule (a page unless the machine says otherwise, see keyShift): its protection key
   * (0..15), as x86 page-table entries hold one. Checked against the accessing CPU's PKRU only on
   * a machine with protection keys; all 0 otherwise.
   */
  readonly pageKeys: Uint8Array;
  /** log2 of the words one protection key covers: PAGE_SHIFT, as on x86, unless the machine asks for finer */
  readonly keyShift: number;
  readonly segments: readonly Segment[];

  constructor(segments: readonly Segment[], keyShift = PAGE_SHIFT) {
    if (!Number.isInteger(keyShift) || keyShift < 0 || keyShift > PAGE_SHIFT) throw new RangeError(`a protection key covers 2^0..2^${PAGE_SHIFT} words, not 2^${keyShift}`);
    this.keyShift = keyShift;
    const end = Math.max(PAGE_WORDS, ...segments.map((s) => s.base + s.sizeWords));
    const sizeWords = Math.ceil(end / PAGE_WORDS) * PAGE_WORDS;
    this.words = new Int32Array(sizeWords);
    this.pagePermissions = new Uint8Array(sizeWords >>> PAGE_SHIFT);
    this.pageKeys = new Uint8Array(sizeWords >>> keyShift);
    this.segments = segments;
    for (const segment of segments) this.map(segment);
  }

  get sizeWords(): number {
    return this.words.length;
  }

  permissionAt(address: number): number {
    if (address < 0 || address >= this.words.length) return 0;
    return this.pagePermissions[address >>> PAGE_SHIFT];
  }

  /** The protection key of the granule holding `address` (0 outside memory). */
  keyAt(address: number): number {
    if (address < 0 || address >= this.words.length) return 0;
    return this.pageKeys[address >>> this.keyShift];
  }

  /** Give the granules (pages) of [base, base + sizeWords) protection key `key` (x86's pkey_mprotect). */
  setKey(base: number, sizeWords: number, key: number): void {
    if (key < 0 || key >= PROTECTION_KEYS || !Number.isInteger(key)) throw new RangeError(`protection key ${key} is not one of 0..${PROTECTION_KEYS - 1}`);
    const granule = 1 << this.keyShift;
    for (let index = base >>> this.keyShift; index < (base + sizeWords + granule - 1) >>> this.keyShift; index++) this.pageKeys[index] = key;
  }

  segmentAt(address: number): Segment | undefined {
    return this.segments.find((s) => address >= s.base && address < s.base + s.sizeWords);
  }

  segmentNamed(name: string): Segment {
    const segment = this.segments.find((s) => s.name === name);
    if (segment === undefined) throw new Error(`no segment named ${name}`);
    return segment;
  }

  private map(segment: Segment): void {
    if (segment.base % PAGE_WORDS !== 0 || segment.sizeWords % PAGE_WORDS !== 0) {
      throw new Error(`segment ${segment.name} is not page aligned`);
    }
    if (segment.base < PAGE_WORDS) throw new Error(`segment ${segment.name} overlaps the null guard`);
    const permission = segmentPermission(segment.kind);
    for (let page = segment.base >>> PAGE_SHIFT; page < (segment.base + segment.sizeWords) >>> PAGE_SHIFT; page++) {
      if (this.pagePermissions[page] !== 0) throw new Error(`segment ${segment.name} overlaps another`);
      this.pagePermissions[page] = permission;
    }
  }
}
