// A first-in first-out queue on a ring buffer, for the memory tier's eviction
// queues. Popping clears the slot, so an evicted object is released at once
// (an array with a consumed prefix kept every evicted object alive until it
// was compacted: up to twice the configured memory). Value type; not shared.

struct FIFO<Element> {
    private var slots: [Element?] = []
    private var head = 0
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    mutating func append(_ e: Element) {
        if count == slots.count { resize(max(16, slots.count * 2)) }
        slots[(head + count) & (slots.count - 1)] = e
        count += 1
    }

    mutating func popFirst() -> Element? {
        guard count > 0 else { return nil }
        let e = slots[head]
        slots[head] = nil
        head = (head + 1) & (slots.count - 1)
        count -= 1
        if slots.count > 64 && count * 4 < slots.count { resize(slots.count / 2) }
        return e
    }

    /// Capacity stays a power of two (indexes wrap with a mask).
    private mutating func resize(_ n: Int) {
        var next = [Element?](repeating: nil, count: n)
        for i in 0..<count { next[i] = slots[(head + i) & (slots.count - 1)] }
        slots = next
        head = 0
    }
}
