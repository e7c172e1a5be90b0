// Streaming gzip (zlib) and brotli encoders and decoders. No I/O: bytes in,
// bytes appended to an IOBuffer out, a piece at a time, so no body is ever held
// whole. Memory per stream is fixed by the window (and zlib's memLevel /
// brotli's quality): about 2^window bytes plus the library's tables.
//
// Ownership: a codec belongs to one thread (the worker whose connection uses
// it); it is a final class so its C state has one owner and is freed once.
import CZlib
import CBrotli
import CEdgeShims
import EdgeHTTP

public enum CodecError: Error, Equatable, Sendable {
    /// The library could not set the stream up (out of memory).
    case setup
    /// The encoded input is not valid gzip / brotli.
    case corrupt
    /// A decoder's output passed its limit (a decompression bomb, or just too large).
    case tooLarge
}

/// Levels and windows for the encoders.
public struct CodecSettings: Sendable, Equatable {
    /// zlib level 1…9.
    public var gzipLevel = 6
    /// zlib window bits 9…15 (memory: about 2^(bits+2) bytes with memLevel 8).
    public var gzipWindowBits = 15
    /// brotli quality 0…11 (5 is a good streaming default: about gzip -9 size at gzip -6 speed).
    public var brotliQuality = 5
    /// brotli window bits 10…24 (memory: about 2^bits bytes for the ring buffer).
    public var brotliWindowBits = 18
    public init() {}
}

public final class StreamCodec {
    enum State {
        case zlib(UnsafeMutablePointer<z_stream>, encoding: Bool)
        case brotliEncoder(OpaquePointer)
        case brotliDecoder(OpaquePointer)
    }
    let state: State
    public let coding: ContentCoding
    public let isEncoder: Bool
    /// Most bytes a decoder may produce (Int.max for encoders).
    public let limit: Int
    public private(set) var produced = 0
    public private(set) var isFinished = false
    /// Output space given to the library per call: a decoder stops within this
    /// many bytes of its limit, and the IOBuffer grows in bounded steps.
    let step = 16 * 1024

    /// An encoder producing `coding` (gzip or br).
    public init(encoding coding: ContentCoding, settings: CodecSettings = CodecSettings()) throws(CodecError) {
        self.coding = coding
        isEncoder = true
        limit = Int.max
        switch coding {
        case .gzip:
            let z = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            z.initialize(to: z_stream())
            // 16 + bits: a gzip header and trailer around the deflate stream.
            guard edge_deflate_init2(z, Int32(settings.gzipLevel), Int32(16 + settings.gzipWindowBits), 8) == Z_OK else {
                z.deallocate()
                throw .setup
            }
            state = .zlib(z, encoding: true)
        case .br:
            guard let s = BrotliEncoderCreateInstance(nil, nil, nil) else { throw .setup }
            BrotliEncoderSetParameter(s, BROTLI_PARAM_QUALITY, UInt32(settings.brotliQuality))
            BrotliEncoderSetParameter(s, BROTLI_PARAM_LGWIN, UInt32(settings.brotliWindowBits))
            BrotliEncoderSetParameter(s, BROTLI_PARAM_MODE, UInt32(BROTLI_MODE_TEXT.rawValue))
            state = .brotliEncoder(s)
        case .identity:
            throw .setup
        }
    }

    /// A decoder for `coding` that fails with `.tooLarge` past `limit` output bytes.
    public init(decoding coding: ContentCoding, limit: Int) throws(CodecError) {
        self.coding = coding
        isEncoder = false
        self.limit = limit
        switch coding {
        case .gzip:
            let z = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            z.initialize(to: z_stream())
            guard edge_inflate_init2(z, 16 + 15) == Z_OK else { z.deallocate(); throw .setup }
            state = .zlib(z, encoding: false)
        case .br:
            guard let s = BrotliDecoderCreateInstance(nil, nil, nil) else { throw .setup }
            state = .brotliDecoder(s)
        case .identity:
            throw .setup
        }
    }

    deinit {
        switch state {
        case .zlib(let z, let enc):
            if enc { deflateEnd(z) } else { inflateEnd(z) }
            z.deallocate()
        case .brotliEncoder(let s): BrotliEncoderDestroyInstance(s)
        case .brotliDecoder(let s): BrotliDecoderDestroyInstance(s)
        }
    }

    /// Feeds `input` (may be empty) and appends what comes out to `out`; with
    /// `finish`, ends the stream (encoders write their trailer; decoders check
    /// that the stream was complete).
    public func feed(_ input: UnsafeRawBufferPointer, finish: Bool, into out: IOBuffer) throws(CodecError) {
        if isFinished {
            // Bytes after the end of a compressed stream are an error; an empty
            // finishing call is fine.
            if !input.isEmpty && !isEncoder { throw .corrupt }
            return
        }
        switch state {
        case .zlib(let z, let enc):
            try feedZlib(z, encoding: enc, input, finish: finish, out)
        case .brotliEncoder(let s):
            try feedBrotli(s, encoder: true, input, finish: finish, out)
        case .brotliDecoder(let s):
            try feedBrotli(s, encoder: false, input, finish: finish, out)
        }
    }

    /// One-shot helpers (the cache compresses or decodes a stored body once).
    public static func encode(_ body: [UInt8], as coding: ContentCoding, settings: CodecSettings = CodecSettings()) throws(CodecError) -> [UInt8] {
        let c = try StreamCodec(encoding: coding, settings: settings)
        let out = IOBuffer(capacity: max(1024, body.count / 3))
        try c.feedAll(body, into: out)
        return Array(out.readView)
    }

    public static func decode(_ body: [UInt8], from coding: ContentCoding, limit: Int) throws(CodecError) -> [UInt8] {
        let c = try StreamCodec(decoding: coding, limit: limit)
        let out = IOBuffer(capacity: max(1024, min(limit, body.count * 4)))
        try c.feedAll(body, into: out)
        return Array(out.readView)
    }

    func feedAll(_ body: [UInt8], into out: IOBuffer) throws(CodecError) {
        var failure: CodecError?
        body.withUnsafeBytes { p in
            do throws(CodecError) { try feed(p, finish: true, into: out) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    // MARK: zlib

    func feedZlib(_ z: UnsafeMutablePointer<z_stream>, encoding: Bool, _ input: UnsafeRawBufferPointer, finish: Bool, _ out: IOBuffer) throws(CodecError) {
        z.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: UInt8.self))
        z.pointee.avail_in = UInt32(input.count)
        while true {
            out.reserve(16 * 1024)
            let space = min(out.writableBytes, step)
            z.pointee.next_out = out.writePointer
            z.pointee.avail_out = UInt32(space)
            let r = encoding ? deflate(z, finish ? Z_FINISH : Z_NO_FLUSH) : inflate(z, Z_NO_FLUSH)
            let n = space - Int(z.pointee.avail_out)
            out.writeIndex += n
            produced += n
            if !encoding && produced > limit { throw .tooLarge }
            let outputFull = z.pointee.avail_out == 0
            let inputLeft = z.pointee.avail_in > 0
            switch r {
            case Z_STREAM_END:
                isFinished = true
                // Bytes after the gzip member (edge does not join members).
                if !encoding && inputLeft { throw .corrupt }
                return
            case Z_OK, Z_BUF_ERROR:
                if outputFull || inputLeft { continue }
                // Everything given was taken and the output was not the limit.
                if encoding && finish { continue }            // deflate goes on until Z_STREAM_END
                if !encoding && finish { throw .corrupt }     // the stream ended early
                return
            default:
                throw .corrupt
            }
        }
    }

    // MARK: brotli

    /// One loop for both directions: give the library input and a bounded
    /// output window until it has taken all input and has nothing more to say.
    func feedBrotli(_ s: OpaquePointer, encoder: Bool, _ input: UnsafeRawBufferPointer, finish: Bool, _ out: IOBuffer) throws(CodecError) {
        var availIn = input.count
        var nextIn = input.baseAddress?.assumingMemoryBound(to: UInt8.self)
        let op = finish ? BROTLI_OPERATION_FINISH : BROTLI_OPERATION_PROCESS
        while true {
            out.reserve(16 * 1024)
            let space = min(out.writableBytes, step)
            var availOut = space
            var nextOut: UnsafeMutablePointer<UInt8>? = out.writePointer
            let r: UInt32 = withUnsafeMutablePointer(to: &nextIn) { inPtr in
                encoder ? UInt32(bitPattern: BrotliEncoderCompressStream(s, op, &availIn, inPtr, &availOut, &nextOut, nil))
                        : BrotliDecoderDecompressStream(s, &availIn, inPtr, &availOut, &nextOut, nil).rawValue
            }
            let n = space - availOut
            out.writeIndex += n
            produced += n
            if encoder {
                guard r == UInt32(bitPattern: BROTLI_TRUE) else { throw .corrupt }
                if finish && BrotliEncoderIsFinished(s) == BROTLI_TRUE { isFinished = true; return }
                if availIn == 0 && BrotliEncoderHasMoreOutput(s) == BROTLI_FALSE && !finish { return }
                continue
            }
            if produced > limit { throw .tooLarge }
            switch r {
            case BROTLI_DECODER_RESULT_SUCCESS.rawValue:
                isFinished = true
                if availIn > 0 { throw .corrupt }
                return
            case BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT.rawValue:
                continue
            case BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT.rawValue:
                if finish { throw .corrupt }
                return
            default:
                throw .corrupt
            }
        }
    }
}
