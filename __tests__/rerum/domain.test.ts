/** The rerum/ domain module: pure functions, no database. */
import {
  BrokenTreeError,
  ancestorsOf,
  applyPatch,
  applySet,
  applyUnset,
  composeDocument,
  descendantsOf,
  importMetadata,
  isDeleted,
  isReleased,
  mayModify,
  namesOf,
  nowStamp,
  planDeleteHeal,
  planRelease,
  rootMetadata,
  segmentIn,
  segmentOf,
  toResponse,
  usesIdAlias,
  versionMetadata,
  withNewState,
} from '../../rerum';
import type { RerumDocument } from '../../types/rerum';

const P = 'http://rerum.test/v1/id/';
const cfg = { context: 'http://store.rerum.io/v1/context.json', apiVersion: '1.1.0' };

/** A linear or branching tree built through the domain functions themselves. */
function root(hex: string, extra: Record<string, unknown> = {}): RerumDocument {
  return composeDocument({ name: hex, ...extra }, hex, P + hex, rootMetadata(cfg, 'agentA'));
}
function version(parent: RerumDocument, hex: string): RerumDocument {
  const v = composeDocument({ name: hex }, hex, P + hex, versionMetadata(cfg, 'agentB', parent));
  parent.__rerum.history.next.push(v['@id']!);
  return v;
}
const ids = (docs: RerumDocument[]) => docs.map((d) => d._id);
const afterOf = (reps: { after: unknown }[], id: string) => reps.map((r) => r.after as RerumDocument).find((d) => d._id === id);

describe('ids', () => {
  test('contexts that alias id', () => {
    expect(usesIdAlias('http://iiif.io/api/presentation/3/context.json')).toBe(true);
    expect(usesIdAlias(['x', 'http://www.w3.org/ns/anno.jsonld'])).toBe(true);
    expect(usesIdAlias('http://iiif.io/api/presentation/2/context.json')).toBe(false);
    expect(usesIdAlias(undefined)).toBe(false);
  });
  test('segmentOf takes the last segment of an http(s) URI, else an InvalidId error', () => {
    expect(segmentOf(`${P}abc`)).toBe('abc');
    expect(segmentOf(`${P}abc?x=1`)).toBe('abc');
    expect(() => segmentOf('abc')).toThrow(expect.objectContaining({ kind: 'InvalidId' }));
    expect(() => segmentOf(12)).toThrow(expect.objectContaining({ kind: 'InvalidId' }));
  });
  test('segmentIn is segmentOf without the error: undefined where segmentOf refuses', () => {
    expect(segmentIn(`${P}abc?x=1#f`)).toBe('abc');
    for (const v of ['abc', `${P}`, 12, undefined, '']) expect(segmentIn(v)).toBeUndefined();
  });
});

describe('metadata', () => {
  test('root', () => {
    const m = rootMetadata(cfg, 'agentA', '2026-01-01T00:00:00.000');
    expect(m).toEqual({
      '@context': cfg.context,
      alpha: true,
      APIversion: '1.1.0',
      createdAt: '2026-01-01T00:00:00.000',
      generatedBy: 'agentA',
      isOverwritten: '',
      isReleased: '',
      releases: { previous: '', next: [], replaces: '' },
      history: { prime: 'root', previous: '', next: [] },
    });
    expect(rootMetadata(cfg, 'a', undefined, 'my-slug').slug).toBe('my-slug');
  });
  test('nowStamp has no trailing Z', () => {
    expect(nowStamp(new Date('2026-01-01T00:00:00Z'))).toBe('2026-01-01T00:00:00.000');
  });
  test('versions take prime from the root, previous from the original', () => {
    const a = root('a');
    const b = version(a, 'b');
    const c = version(b, 'c');
    expect(b.__rerum.history).toEqual({ prime: P + 'a', previous: P + 'a', next: [P + 'c'] });
    expect(c.__rerum.history).toEqual({ prime: P + 'a', previous: P + 'b', next: [] });
    expect(c.__rerum.generatedBy).toBe('agentB');
  });
  test('a version of a released object has it as releases.previous', () => {
    const a = root('a');
    a.__rerum.isReleased = nowStamp();
    expect(versionMetadata(cfg, 'x', a).releases.previous).toBe(P + 'a');
    const b = root('b');
    b.__rerum.releases.previous = P + 'z';
    expect(versionMetadata(cfg, 'x', b).releases.previous).toBe(P + 'z');
  });
  test('import remembers the external id', () => {
    expect(importMetadata(cfg, 'x', 'http://elsewhere/1').history).toEqual({ prime: 'root', previous: 'http://elsewhere/1', next: [] });
  });
  test('rules', () => {
    const a = root('a');
    expect(isReleased(a)).toBe(false);
    expect(isDeleted(a)).toBe(false);
    expect(isDeleted({ _id: 'a', __deleted: { object: {}, deletor: 'x', time: '' } })).toBe(true);
    expect(mayModify(a, 'agentA')).toBe(true);
    expect(mayModify(a, 'agentZ')).toBe(false);
  });
});

describe('documents', () => {
  test('compose orders @context, @id, content, __rerum, _id and drops protected keys', () => {
    const d = composeDocument(
      { x: 1, '@context': 'c', '@id': 'forged', _id: 'forged', __rerum: { forged: true }, id: 'kept' },
      'h',
      P + 'h',
      rootMetadata(cfg, 'a'),
    );
    expect(Object.keys(d)).toEqual(['@context', '@id', 'x', 'id', '__rerum', '_id']);
    expect(d['@id']).toBe(P + 'h');
    expect((d.__rerum as unknown as Record<string, unknown>).forged).toBeUndefined();
    const iiif = composeDocument(
      { '@context': 'http://iiif.io/api/presentation/3/context.json', id: 'forged' },
      'h',
      P + 'h',
      rootMetadata(cfg, 'a'),
    );
    expect(iiif.id).toBeUndefined();
  });
  test('responses never carry _id; aliasing contexts get id', () => {
    const plain = toResponse(root('a'), P);
    expect(plain).not.toHaveProperty('_id');
    expect(plain['@id']).toBe(P + 'a');
    const iiif = toResponse(root('b', { '@context': 'http://iiif.io/api/presentation/3/context.json' }), P);
    expect(Object.keys(iiif).slice(0, 2)).toEqual(['@context', 'id']);
    expect(iiif.id).toBe(P + 'b');
    expect(iiif).not.toHaveProperty('@id');
    // what /v1/id/<segment> finds them by: the stored _id, the response's public id, and the slug
    const slugged = composeDocument(
      { '@context': 'http://iiif.io/api/presentation/3/context.json' },
      'c',
      P + 'c',
      rootMetadata(cfg, 'a', undefined, 's'),
    );
    expect(namesOf(slugged)).toEqual(['c', 's']);
    expect(namesOf(toResponse(slugged, P))).toEqual(['c', 's']);
    expect(namesOf(plain)).toEqual(['a']);
    expect(withNewState(plain).new_obj_state).toEqual(plain);
  });
  test('patch changes existing keys only; null removes', () => {
    const a = root('a', { keep: 1, drop: 2 });
    expect(applyPatch(a, { keep: 5, drop: null, novel: 1 })).toEqual({ changed: true, content: expect.objectContaining({ keep: 5 }) });
    expect(applyPatch(a, { drop: null }).content).not.toHaveProperty('drop');
    expect(applyPatch(a, { novel: 1, '@id': 'x' }).changed).toBe(false);
  });
  test('set adds new keys only', () => {
    const a = root('a', { keep: 1 });
    const r = applySet(a, { keep: 9, novel: 2 });
    expect(r.changed).toBe(true);
    expect(r.content).toMatchObject({ keep: 1, novel: 2 });
    expect(applySet(a, { keep: 9 }).changed).toBe(false);
  });
  test('unset removes existing keys given as null', () => {
    const a = root('a', { keep: 1, drop: 2 });
    const r = applyUnset(a, { drop: null, keep: 3, absent: null });
    expect(r.changed).toBe(true);
    expect(r.content).not.toHaveProperty('drop');
    expect(r.content).toHaveProperty('keep', 1);
    expect(applyUnset(a, { absent: null, __rerum: null }).changed).toBe(false);
  });
});

describe('history tree', () => {
  // a → b → c, b → d (branch), c → e
  function tree() {
    const a = root('a');
    const b = version(a, 'b');
    const c = version(b, 'c');
    const d = version(b, 'd');
    const e = version(c, 'e');
    return { a, b, c, d, e, all: [a, b, c, d, e] };
  }

  test('ancestors nearest first; descendants depth first', () => {
    const t = tree();
    expect(ids(ancestorsOf(t.all, t.e))).toEqual(['c', 'b', 'a']);
    expect(ids(ancestorsOf(t.all, t.a))).toEqual([]);
    expect(ids(descendantsOf(t.all, t.b))).toEqual(['c', 'e', 'd']);
    expect(ids(descendantsOf(t.all, t.e))).toEqual([]);
  });

  test('deleting a middle version re-links previous and next', () => {
    const t = tree();
    const reps = planDeleteHeal(t.all, t.c, P);
    expect(ids(reps.map((r) => r.after as RerumDocument)).sort()).toEqual(['b', 'e']);
    expect(afterOf(reps, 'e')!.__rerum.history.previous).toBe(P + 'b');
    expect(afterOf(reps, 'b')!.__rerum.history.next).toEqual([P + 'd', P + 'e']);
    // before states are untouched
    expect(t.b.__rerum.history.next).toEqual([P + 'c', P + 'd']);
  });

  test('deleting the prime makes each next version a root and re-primes its subtree', () => {
    const t = tree();
    const reps = planDeleteHeal(t.all, t.a, P);
    const b = afterOf(reps, 'b')!;
    expect(b.__rerum.history).toMatchObject({ prime: 'root', previous: '' });
    for (const id of ['c', 'd', 'e']) expect(afterOf(reps, id)!.__rerum.history.prime).toBe(P + 'b');
  });

  test('deleting an imported root keeps its external previous on the new root', () => {
    const a = composeDocument({}, 'a', P + 'a', importMetadata(cfg, 'x', 'http://elsewhere/1'));
    const b = version(a, 'b');
    const reps = planDeleteHeal([a, b], a, P);
    expect(afterOf(reps, 'b')!.__rerum.history).toMatchObject({ prime: 'root', previous: 'http://elsewhere/1' });
  });

  test('deleting a leaf only unlinks it from its previous', () => {
    const t = tree();
    const reps = planDeleteHeal(t.all, t.d, P);
    expect(reps).toHaveLength(1);
    expect(afterOf(reps, 'b')!.__rerum.history.next).toEqual([P + 'c']);
  });

  test('a missing next version is a broken tree', () => {
    const t = tree();
    expect(() => planDeleteHeal([t.a, t.b], t.b, P)).toThrow(BrokenTreeError);
  });
});

describe('releases tree', () => {
  function chain() {
    const a = root('a');
    const b = version(a, 'b');
    const c = version(b, 'c');
    const d = version(c, 'd');
    return { a, b, c, d, all: [a, b, c, d] };
  }
  const apply = (all: RerumDocument[], reps: { after: unknown }[]) => all.map((d) => afterOf(reps, d._id) ?? d);

  test('first release: descendants point to it, ancestors list it', () => {
    const t = chain();
    const plan = planRelease(t.all, t.b, '2026-01-01T00:00:00.000', 'slug-b');
    expect(plan.released.__rerum).toMatchObject({
      isReleased: '2026-01-01T00:00:00.000',
      slug: 'slug-b',
      releases: { replaces: '', previous: '' },
    });
    expect(afterOf(plan.replacements, 'c')!.__rerum.releases.previous).toBe(P + 'b');
    expect(afterOf(plan.replacements, 'd')!.__rerum.releases.previous).toBe(P + 'b');
    expect(afterOf(plan.replacements, 'a')!.__rerum.releases.next).toEqual([P + 'b']);
  });

  test('releasing a later version replaces the earlier release', () => {
    const t = chain();
    let all = apply(t.all, planRelease(t.all, t.b, 't1').replacements);
    const d = all.find((x) => x._id === 'd')!;
    const plan = planRelease(all, d, 't2');
    expect(plan.released.__rerum.releases).toMatchObject({ previous: P + 'b', replaces: P + 'b' });
    all = apply(all, plan.replacements);
    const byId = (id: string) => all.find((x) => x._id === id)!;
    expect(byId('b').__rerum.releases.next).toEqual([P + 'd']);
    expect(byId('a').__rerum.releases.next).toEqual([P + 'b', P + 'd']);
  });

  test('releasing between two releases re-points the later one', () => {
    const t = chain();
    let all = apply(t.all, planRelease(t.all, t.a, 't1').replacements);
    all = apply(
      all,
      planRelease(
        all,
        all.find((x) => x._id === 'd')!,
        't2',
      ).replacements,
    );
    const c = all.find((x) => x._id === 'c')!;
    expect(c.__rerum.releases.previous).toBe(P + 'a');
    const plan = planRelease(all, c, 't3');
    all = apply(all, plan.replacements);
    const byId = (id: string) => all.find((x) => x._id === id)!;
    expect(byId('c').__rerum.releases).toMatchObject({ previous: P + 'a', replaces: P + 'a', next: [P + 'd'] });
    expect(byId('d').__rerum.releases).toMatchObject({ previous: P + 'c', replaces: P + 'c' });
    expect(byId('a').__rerum.releases.next).toEqual([P + 'c']);
    expect(byId('b').__rerum.releases.next).toEqual([P + 'c']);
  });
});
