// Role ↔ tensor name, both ways, from a family's templates. Layer and expert
// indices are plain decimal numbers without leading zeros (as transformers'
// nn.ModuleList names them), so name → slot → name is the identity.
import { MoeforgeError } from '../errors.js';
import { ROLE_INFO, type TensorRole, type TensorSlot } from '../roles.js';
import type { ArchitectureSpec } from './types.js';

/** The HF name of a slot; throws `unknown_architecture` when the family has no such role. */
export function tensorName(arch: ArchitectureSpec, slot: TensorSlot): string {
  const template = arch.names[slot.role];
  if (template === undefined) {
    throw new MoeforgeError('unknown_architecture', `${arch.family} has no ${slot.role} tensor`, { path: arch.family });
  }
  const scope = ROLE_INFO[slot.role].scope;
  if (scope !== 'global' && !isIndex(slot.layer)) {
    throw new Error(`tensorName: role ${slot.role} needs a layer index, got ${String(slot.layer)}`);
  }
  if (scope === 'expert' && !isIndex(slot.expert)) {
    throw new Error(`tensorName: role ${slot.role} needs an expert index, got ${String(slot.expert)}`);
  }
  return template.replace('{layer}', String(slot.layer)).replace('{expert}', String(slot.expert));
}

function isIndex(n: number | undefined): n is number {
  return n !== undefined && Number.isSafeInteger(n) && n >= 0;
}

interface CompiledName {
  role: TensorRole;
  pattern: RegExp;
  /** Capture group order: 'layer' | 'expert'. */
  groups: ('layer' | 'expert')[];
}

const compiled = new WeakMap<ArchitectureSpec, Map<string, CompiledName>>();

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function compile(arch: ArchitectureSpec): Map<string, CompiledName> {
  let byRole = compiled.get(arch);
  if (byRole) return byRole;
  byRole = new Map();
  for (const [role, template] of Object.entries(arch.names) as [TensorRole, string][]) {
    const groups: ('layer' | 'expert')[] = [];
    const source = template
      .split(/(\{layer\}|\{expert\})/)
      .map((part) => {
        if (part === '{layer}' || part === '{expert}') {
          groups.push(part === '{layer}' ? 'layer' : 'expert');
          return '(0|[1-9][0-9]*)';
        }
        return escapeRegExp(part);
      })
      .join('');
    byRole.set(role, { role, pattern: new RegExp(`^${source}$`), groups });
  }
  compiled.set(arch, byRole);
  return byRole;
}

/** The slot a tensor name stands for in this family, or undefined when it is not one of its names. */
export function parseTensorName(arch: ArchitectureSpec, name: string): TensorSlot | undefined {
  for (const { role, pattern, groups } of compile(arch).values()) {
    const m = pattern.exec(name);
    if (!m) continue;
    const slot: TensorSlot = { role };
    groups.forEach((g, i) => {
      slot[g] = Number(m[i + 1]);
    });
    return slot;
  }
  return undefined;
}
