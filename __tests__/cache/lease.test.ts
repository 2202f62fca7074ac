import { Lease } from '../../cache/lease';

describe('lease', () => {
  test('valid until sent-at + lease; a lapse clears once, and renewal after a lapse clears before reuse', () => {
    let now = 1000;
    let clears = 0;
    const l = new Lease(
      100,
      () => clears++,
      () => now,
    );
    expect(l.valid()).toBe(false);
    expect(clears).toBe(0); // never held: nothing to clear
    l.renew(990); // heartbeat sent at 990, acknowledged now
    expect(l.valid()).toBe(true);
    expect(l.expiry).toBe(1090);
    now = 1089;
    expect(l.valid()).toBe(true);
    now = 1090;
    expect(l.valid()).toBe(false);
    expect(clears).toBe(1);
    expect(l.valid()).toBe(false);
    expect(clears).toBe(1);
    const epoch = l.epoch;
    l.renew(1085);
    expect(l.valid()).toBe(true);
    expect(l.epoch).toBe(epoch + 1); // a new lease: reads begun during the lapse may not fill
    l.renew(1086); // an extension of a held lease keeps the epoch
    expect(l.epoch).toBe(epoch + 1);
    // lapse never noticed by a read: the renewal itself clears first
    now = 1300;
    l.renew(1290);
    expect(clears).toBe(2);
    expect(l.valid()).toBe(true);
    // a renewal that is already stale does not extend
    now = 1500;
    l.renew(1350);
    expect(l.valid()).toBe(false);
  });

  test('renewal never shortens; revoke ends it at once', () => {
    let now = 0;
    const l = new Lease(
      100,
      () => undefined,
      () => now,
    );
    l.renew(50);
    l.renew(10);
    expect(l.expiry).toBe(150);
    now = 60;
    l.revoke();
    expect(l.valid()).toBe(false);
  });
});
