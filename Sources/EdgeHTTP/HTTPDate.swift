// IMF-fixdate formatting and parsing (RFC 9110 §5.6.7). Pure: the caller
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
        let dayNum = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secs = Int(seconds - dayNum * 86400)
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

    @inline(__always) static func two(_ v: Int, _ out: IOBuffer) {
        out.append(byte: UInt8(48 + v / 10 % 10)); out.append(byte: UInt8(48 + v % 10))
    }

    /// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`); nil when invalid.
    public static func parse(_ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int) -> Int64? {
        guard e - s == 29, p[s + 3] == 44, p[s + 4] == 32, p[s + 7] == 32, p[s + 11] == 32, p[s + 16] == 32,
              p[s + 19] == 58, p[s + 22] == 58, p[s + 25] == 32, p[s + 26] == 71, p[s + 27] == 77, p[s + 28] == 84 else { return nil }
        func num(_ at: Int, _ len: Int) -> Int? {
            var v = 0
            for k in 0..<len {
                let c = p[s + at + k]
                guard c >= 48 && c <= 57 else { return nil }
                v = v * 10 + Int(c - 48)
            }
            return v
        }
        guard let d = num(5, 2), let y = num(12, 4), let hh = num(17, 2), let mm = num(20, 2), let ss = num(23, 2) else { return nil }
        var month = -1
        for (k, name) in months.enumerated() {
            let u = name.utf8Start
            if p[s + 8] == u[0] && p[s + 9] == u[1] && p[s + 10] == u[2] { month = k + 1; break }
        }
        guard month > 0, d >= 1, d <= 31, hh < 24, mm < 60, ss < 61 else { return nil }
        return daysFromCivil(Int64(y), month, d) * 86400 + Int64(hh * 3600 + mm * 60 + ss)
    }

    public static func parse(_ s: String) -> Int64? {
        var s = s
        return s.withUTF8 { parse(UnsafeRawBufferPointer($0), 0, $0.count) }
    }
}
