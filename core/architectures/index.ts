// Architectures: per-family role ↔ name tables, the expected tensor list of a
// config, and checkpoint validation against it.
export type { ArchitectureSpec } from './types.js';
export { defineArchitecture } from './types.js';
export { ARCHITECTURES, getArchitecture, isModelFamily } from './registry.js';
export { tensorName, parseTensorName } from './names.js';
export type { ExpectedTensor } from './expected.js';
export { expectedTensors } from './expected.js';
export type { ValidationProblem, TensorHeader } from './validate.js';
export { validateTensors } from './validate.js';
