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

    /// RFC 9773 §4.2: the renewal time (seconds) a client picks in the server's
    /// suggested window, uniformly by `seed`; the start when the window is empty
    /// or reversed. A time already past means: renew now.
    public static func renewalInfoAt(windowStart: Int64, windowEnd: Int64, seed: UInt64) -> Int64 {
        windowEnd > windowStart ? windowStart + Int64(seed % UInt64(windowEnd - windowStart)) : windowStart
    }

    /// When to ask for renewal information again (milliseconds from now): the
    /// server's Retry-After, 6 hours without one, kept between `floorMillis`
    /// and a day (RFC 9773 §4.3.3: not more often than a client can justify,
    /// at least daily).
    public static func renewalInfoPoll(retryAfterSeconds: Int64?, floorMillis: Int64) -> Int64 {
        let asked = retryAfterSeconds.map { $0 * 1000 } ?? 6 * 3_600_000
        return min(max(asked, floorMillis), 24 * 3_600_000)
    }
}
