// HTTP-date formatting (IMF-fixdate) and parsing (all three formats, RFC 9110 §5.6.7). Pure: the caller
// supplies the time; nothing here reads a clock.

public enum HTTPDate {
    static let days: [StaticString] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
    static let months: [StaticString] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Civil date from days since 1970-01-01 (proleptic Gregorian).
    public static func civil(_ z0: Int64) -> (y: Int64, m: Int, d: Int) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = Int(doy - (153 * mp + 2) / 5 + 1)
        let m = Int(mp < 10 ? mp + 3 : mp - 9)
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    /// Days since 1970-01-01 from a civil date.
    static func daysFromCivil(_ y0: Int64, _ m: Int, _ d: Int) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = Int64(m > 2 ? m - 3 : m + 9)
        let doy = (153 * mp + 2) / 5 + Int64(d) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    /// Writes the 29-byte IMF-fixdate for `seconds` since the epoch.
    public static func format(_ seconds: Int64, into out: IOBuffer) {
        let (dayNum, secs) = dayAndSecond(seconds)
        let (y, m, d) = civil(dayNum)
        let wd = Int(((dayNum % 7) + 7) % 7)
        out.append(days[wd]); out.append(", ")
        two(d, out); out.append(byte: 32)
        out.append(months[m - 1]); out.append(byte: 32)
        let yy = Int(y)
        two(yy / 100, out); two(yy % 100, out); out.append(byte: 32)
        two(secs / 3600, out); out.append(byte: 58)
        two(secs / 60 % 60, out); out.append(byte: 58)
        two(secs % 60, out); out.append(" GMT")
    }

    /// The IMF-fixdate for `seconds` as a String (for logs and tests).
    public static func string(_ seconds: Int64) -> String {
        let b = IOBuffer(capacity: 32)
        format(seconds, into: b)
        return String(decoding: b.readView, as: UTF8.self)
    }

    /// The day since 1970-01-01 and the second in it (for times before 1970 too).
    @inline(__always) static func dayAndSecond(_ seconds: Int64) -> (day: Int64, second: Int) {
        let day = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        return (day, Int(seconds - day * 86400))
    }

    @inline(__always) static func two(_ v: Int, _ out: IOBuffer) {
        out.append(byte: UInt8(48 + v / 10 % 10)); out.append(byte: UInt8(48 + v % 10))
    }

    /// Parses an HTTP-date in any of its three formats (RFC 9110 §5.6.7): the
    /// IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, the obsolete RFC 850
    /// `Sunday, 06-Nov-94 08:49:37 GMT` and asctime `Sun Nov  6 08:49:37 1994`.
    /// Day and month names and `GMT` compare case-insensitively (RFC 9111 §4.2);
    /// the day name is not checked against the date. An RFC 850 two-digit year
    /// is the one in the century that puts it at most 50 years after `now`.
    /// nil when invalid.
    public static func parse(_ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int, now: Int64) -> Int64? {
        var i = s
        @inline(__always) func lower(_ at: Int) -> UInt8 { let c = p[at]; return c >= 65 && c <= 90 ? c + 32 : c }
        func letters() -> Int { let st = i; while i < e, (p[i] | 0x20) >= 97, (p[i] | 0x20) <= 122 { i += 1 }; return i - st }
        func digits(_ n: ClosedRange<Int>) -> Int? {
            var v = 0, k = 0
            while i < e, p[i] >= 48, p[i] <= 57, k < n.upperBound { v = v * 10 + Int(p[i] - 48); i += 1; k += 1 }
            return n.contains(k) ? v : nil
        }
        func expect(_ c: UInt8) -> Bool { guard i < e, p[i] == c else { return false }; i += 1; return true }
        func month(_ at: Int) -> Int? {
            for (k, name) in months.enumerated() {
                let u = name.utf8Start
                if lower(at) == u[0] | 0x20 && lower(at + 1) == u[1] && lower(at + 2) == u[2] { return k + 1 }
            }
            return nil
        }
        func clock() -> (Int, Int, Int)? {
            guard let hh = digits(2...2), expect(58), let mm = digits(2...2), expect(58), let ss = digits(2...2) else { return nil }
            return (hh, mm, ss)
        }
        func gmt() -> Bool {
            guard i + 3 == e, lower(i) == 103, lower(i + 1) == 109, lower(i + 2) == 116 else { return false }
            i = e; return true
        }
        let dayName = letters()
        guard dayName >= 3 else { return nil }
        var y: Int64, m: Int, d: Int, t: (Int, Int, Int)
        if expect(44) {
            guard expect(32) else { return nil }
            if dayName == 3 {
                // IMF-fixdate: DD SP Mon SP YYYY SP hh:mm:ss SP GMT
                guard let dd = digits(2...2), expect(32), i + 3 <= e, let mo = month(i) else { return nil }
                i += 3
                guard expect(32), let yy = digits(4...4), expect(32), let c = clock(), expect(32), gmt() else { return nil }
                y = Int64(yy); m = mo; d = dd; t = c
            } else {
                // RFC 850: DD-Mon-YY SP hh:mm:ss SP GMT, with the full day name
                guard let dd = digits(2...2), expect(45), i + 3 <= e, let mo = month(i) else { return nil }
                i += 3
                guard expect(45), let yy = digits(2...2), expect(32), let c = clock(), expect(32), gmt() else { return nil }
                let nowYear = civil(now >= 0 ? now / 86400 : (now - 86399) / 86400).y
                var full = nowYear - nowYear % 100 + Int64(yy)
                if full > nowYear + 50 { full -= 100 }
                y = full; m = mo; d = dd; t = c
            }
        } else {
            // asctime: Mon SP (DD | SP D) SP hh:mm:ss SP YYYY
            guard dayName == 3, expect(32), i + 3 <= e, let mo = month(i) else { return nil }
            i += 3
            guard expect(32) else { return nil }
            if i < e, p[i] == 32 { i += 1; guard let dd = digits(1...1) else { return nil }; d = dd }
            else { guard let dd = digits(2...2) else { return nil }; d = dd }
            guard expect(32), let c = clock(), expect(32), let yy = digits(4...4), i == e else { return nil }
            y = Int64(yy); m = mo; t = c
        }
        guard d >= 1, d <= 31, t.0 < 24, t.1 < 60, t.2 < 61 else { return nil }
        return daysFromCivil(y, m, d) * 86400 + Int64(t.0 * 3600 + t.1 * 60 + t.2)
    }

    public static func parse(_ s: String, now: Int64) -> Int64? {
        var s = s
        return s.withUTF8 { parse(UnsafeRawBufferPointer($0), 0, $0.count, now: now) }
    }
}
