// When to renew and when to retry: pure functions of the certificate's dates,
// the failure count and a per-tenant seed (no clock reads here).

public enum ACMESchedule {
    /// Renewal time (seconds): two thirds into the certificate's lifetime, made
    /// earlier by up to a thirtieth of it from `seed`, so many tenants issued
    /// together do not all renew in the same second.
    public static func renewAt(notBefore: Int64, notAfter: Int64, seed: UInt64) -> Int64 {
        let life = max(notAfter - notBefore, 1)
        let jitter = life / 30 > 0 ? Int64(seed % UInt64(life / 30)) : 0
        return notBefore + life * 2 / 3 - jitter
    }

    /// Delay (milliseconds) before retry number `failures` (1 = after the
    /// first failure): `minMillis` doubling per failure up to `maxMillis`, plus
    /// up to a tenth more from `seed`; never sooner than the server's
    /// Retry-After (`retryAfterSeconds`).
    public static func retryDelay(failures: Int, minMillis: Int64, maxMillis: Int64, retryAfterSeconds: Int64?, seed: UInt64) -> Int64 {
        let shift = min(max(failures - 1, 0), 40)
        var d = minMillis
        for _ in 0..<shift where d < maxMillis { d *= 2 }
        d = min(d, maxMillis)
        d += d / 10 > 0 ? Int64(seed % UInt64(d / 10)) : 0
        if let r = retryAfterSeconds, r * 1000 > d { d = r * 1000 }
        return d
    }

    /// When a tenant with no certificate yet is first tried, after a start:
    /// spread over `spreadMillis` by its seed (0: at once).
    public static func firstTry(spreadMillis: Int64, seed: UInt64) -> Int64 {
        spreadMillis > 0 ? Int64(seed % UInt64(spreadMillis)) : 0
    }
}
