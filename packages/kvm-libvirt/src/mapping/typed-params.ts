/**
 * libvirt typed parameters (`virTypedParameter`), as the tuning APIs read and write them.
 */

import { hvkitError } from '@hvkit/core';

/**
 * The mapping layer's names for the RPC client's typed-parameter definitions (one definition, two names
 * kept for the public API): `TYPED_PARAM_TYPE` is `TYPED_PARAM`, `LibvirtTypedParam` is `TypedParam`.
 */
export {
  TYPED_PARAM as TYPED_PARAM_TYPE,
  type TypedParam as LibvirtTypedParam,
  type TypedParamTypeNumber as TypedParamType,
} from '../protocol/types';

import { ADAPTER_ID } from '../errors';
import {
  type TypedParam as LibvirtTypedParam,
  TYPED_PARAM as TYPED_PARAM_TYPE,
  type TypedParamTypeNumber as TypedParamType,
} from '../protocol/types';

/** Inclusive ranges of the integer types. */
const RANGES: Readonly<Record<number, readonly [bigint, bigint]>> = {
  [TYPED_PARAM_TYPE.INT]: [-(2n ** 31n), 2n ** 31n - 1n],
  [TYPED_PARAM_TYPE.UINT]: [0n, 2n ** 32n - 1n],
  [TYPED_PARAM_TYPE.LLONG]: [-(2n ** 63n), 2n ** 63n - 1n],
  [TYPED_PARAM_TYPE.ULLONG]: [0n, 2n ** 64n - 1n],
};

const TYPE_NAMES: Readonly<Record<number, string>> = {
  1: 'int',
  2: 'uint',
  3: 'llong',
  4: 'ullong',
  5: 'double',
  6: 'boolean',
  7: 'string',
};

/** libvirt's name of a type number (`int`, `ullong`, ...), as in its error messages. */
export function typedParamTypeName(type: number): string {
  return TYPE_NAMES[type] ?? `type ${type}`;
}

/** Finds a parameter by field name (the first one, as libvirt does). */
export function findParam(
  params: readonly LibvirtTypedParam[],
  field: string,
): LibvirtTypedParam | undefined {
  return params.find((p) => p.field === field);
}

/**
 * An integer parameter as a bigint: numbers, bigints, decimal strings (as stored in JSON) and booleans
 * (1/0). Undefined when the field is absent or its value is not an integer.
 */
export function paramBigInt(params: readonly LibvirtTypedParam[], field: string): bigint | undefined {
  const p = findParam(params, field);
  if (!p) return undefined;
  const v = p.value;
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return Number.isInteger(v) ? BigInt(v) : undefined;
  if (typeof v === 'boolean') return v ? 1n : 0n;
  if (typeof v === 'string' && /^[-+]?\d+$/.test(v.trim())) return BigInt(v.trim());
  return undefined;
}

/** A STRING parameter's value, or undefined. */
export function paramString(params: readonly LibvirtTypedParam[], field: string): string | undefined {
  const p = findParam(params, field);
  return p && typeof p.value === 'string' ? p.value : undefined;
}

/**
 * Builds the parameter to send for `field` with the type the driver reported for it (libvirt rejects a
 * different type: "invalid type 'ullong' for parameter 'weight', expected 'uint'"). The value is checked
 * against that type's range.
 *
 * @throws HvkitError `UNSUPPORTED` when the driver did not report `field` (it cannot set it);
 *   `INVALID_ARGUMENT` when `value` does not fit the reported type.
 */
export function paramLike(
  reported: readonly LibvirtTypedParam[],
  field: string,
  value: bigint | number | string | boolean,
  limitField?: string,
): LibvirtTypedParam {
  const p = findParam(reported, field);
  if (!p) {
    throw hvkitError('UNSUPPORTED', `The libvirt driver does not report the tuning parameter '${field}'.`, {
      adapter: ADAPTER_ID,
      details: { field: limitField ?? field, parameter: field },
    });
  }
  return typedParam(field, p.type, value, limitField);
}

/**
 * Builds a typed parameter of an explicit type, checking the value.
 *
 * @throws HvkitError `INVALID_ARGUMENT` when `value` does not fit `type`.
 */
export function typedParam(
  field: string,
  type: TypedParamType,
  value: bigint | number | string | boolean,
  limitField?: string,
): LibvirtTypedParam {
  const fail = (why: string) =>
    hvkitError(
      'INVALID_ARGUMENT',
      `Cannot send ${String(value)} as ${typedParamTypeName(type)} '${field}': ${why}.`,
      {
        adapter: ADAPTER_ID,
        details: { field: limitField ?? field, parameter: field, value: String(value) },
      },
    );
  const range = RANGES[type];
  if (range) {
    let big: bigint;
    if (typeof value === 'bigint') big = value;
    else if (typeof value === 'number' && Number.isSafeInteger(value)) big = BigInt(value);
    else throw fail('not an integer');
    if (big < range[0] || big > range[1]) throw fail(`outside ${range[0]}..${range[1]}`);
    // 32-bit types travel as numbers, 64-bit ones as bigints.
    return {
      field,
      type,
      value: type === TYPED_PARAM_TYPE.LLONG || type === TYPED_PARAM_TYPE.ULLONG ? big : Number(big),
    };
  }
  if (type === TYPED_PARAM_TYPE.DOUBLE) {
    const n = typeof value === 'bigint' ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isFinite(n)) throw fail('not a finite number');
    return { field, type, value: n };
  }
  if (type === TYPED_PARAM_TYPE.BOOLEAN) {
    if (typeof value !== 'boolean') throw fail('not a boolean');
    return { field, type, value };
  }
  if (type === TYPED_PARAM_TYPE.STRING) {
    if (typeof value !== 'string') throw fail('not a string');
    return { field, type, value };
  }
  throw fail('unknown type');
}
