// RFC 3339 timestamps (the ACME protocol's, and the admin API's for people):
// "2026-12-07T22:52:00Z". Pure: the caller supplies the time.

extension HTTPDate {
    /// `seconds` since the epoch as UTC text, to the second.
    /// (Years 0 to 9999, as the format has them.)
    public static func rfc3339(_ seconds: Int64) -> String {
        let (dayNum, secs) = dayAndSecond(seconds)
        let (y, m, d) = civil(dayNum)
        let out = IOBuffer(capacity: 24)
        let yy = Int(y)
        two(yy / 100, out); two(yy % 100, out); out.append(byte: 45)
        two(m, out); out.append(byte: 45)
        two(d, out); out.append(byte: 84)
        two(secs / 3600, out); out.append(byte: 58)
        two(secs / 60 % 60, out); out.append(byte: 58)
        two(secs % 60, out); out.append(byte: 90)
        return String(decoding: out.readView, as: UTF8.self)
    }

    /// Seconds since the epoch from an RFC 3339 date-time (§5.6: full-date "T"
    /// full-time, "T" and "Z" in either case, a fraction of a second ignored,
    /// an offset as "Z" or "+hh:mm"); nil when it is not one.
    public static func parseRFC3339(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        var i = 0
        func num(_ n: Int) -> Int? {
            guard i + n <= b.count else { return nil }
            var v = 0
            for k in i..<(i + n) {
                guard b[k] >= 48 && b[k] <= 57 else { return nil }
                v = v * 10 + Int(b[k] - 48)
            }
            i += n
            return v
        }
        func expect(_ c: UInt8) -> Bool { guard i < b.count, b[i] == c else { return false }; i += 1; return true }
        guard let y = num(4), expect(45), let mo = num(2), expect(45), let d = num(2) else { return nil }
        guard i < b.count, b[i] == 84 || b[i] == 116 else { return nil }
        i += 1
        guard let h = num(2), expect(58), let mi = num(2), expect(58), let s = num(2) else { return nil }
        if expect(46) {
            let start = i
            while i < b.count, b[i] >= 48, b[i] <= 57 { i += 1 }
            guard i > start else { return nil }
        }
        var offset = 0
        guard i < b.count else { return nil }
        if b[i] == 90 || b[i] == 122 {
            i += 1
        } else if b[i] == 43 || b[i] == 45 {
            let sign = b[i] == 45 ? -1 : 1
            i += 1
            guard let oh = num(2), expect(58), let om = num(2), oh <= 23, om <= 59 else { return nil }
            offset = sign * (oh * 3600 + om * 60)
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        let monthDays = [31, (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard (1...12).contains(mo), d >= 1, d <= monthDays[mo - 1], h <= 23, mi <= 59, s <= 60 else { return nil }
        return daysFromCivil(Int64(y), mo, d) * 86400 + Int64(h * 3600 + mi * 60 + min(s, 59)) - Int64(offset)
    }
}
