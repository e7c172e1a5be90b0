// swift-tools-version:6.0
import PackageDescription

// Dependency direction (see ARCHITECTURE.md): C system libraries and pure
// protocol/policy modules at the bottom, I/O above them, the proxy pipeline on
// top, the executables thinnest of all. No Swift package dependencies.
// Release builds: the data path owns its state per thread (see Worker.swift),
// so dynamic exclusivity checks only cost time there (measured ~10% of CPU at
// 1 KiB pass-through); cross-module optimization lets the pure modules inline.
let fast: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked", "-cross-module-optimization"], .when(configuration: .release)),
]

let package = Package(
    name: "edge",
    products: [
        .executable(name: "edged", targets: ["edged"]),
        .executable(name: "edgectl", targets: ["edgectl"]),
    ],
    targets: [
        // System libraries (Debian: libssl-dev, zlib1g-dev, libbrotli-dev).
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CBrotli", pkgConfig: "libbrotlienc", providers: [.apt(["libbrotli-dev"])]),
        // Static-inline shims for the libraries' macros and version queries.
        .target(name: "CEdgeShims", dependencies: ["COpenSSL", "CZlib", "CBrotli"]),

        // Pure: HTTP/1.1 parsing, framing, serialization, target normalization.
        .target(name: "EdgeHTTP", swiftSettings: fast),
        // Pure: HTTP/2 framing, HPACK, the connection and stream state machines.
        .target(name: "EdgeHTTP2", dependencies: ["EdgeHTTP"], swiftSettings: fast),
        // Pure: origin balancing and passive health policy.
        .target(name: "EdgeUpstream", dependencies: ["EdgeHTTP"], swiftSettings: fast),
        // Pure: protection policy: address prefix lists, rate limits (GCRA, a
        // shared fixed-size table), the PROXY protocol header.
        .target(name: "EdgeProtect", dependencies: ["EdgeHTTP"], swiftSettings: fast),
        // Pure: RFC 9111 cache policy, keys (no I/O, no clock).
        .target(name: "EdgeCache", dependencies: ["EdgeHTTP"], swiftSettings: fast),
        // Streaming gzip / brotli codecs over the system libraries (no I/O).
        .target(name: "EdgeCompress", dependencies: ["CZlib", "CBrotli", "CEdgeShims", "EdgeHTTP"], swiftSettings: fast),
        // Pure: JSON (RFC 8259) values, their parser and writer, Encodable to JSON.
        .target(name: "EdgeJSON"),
        // Config decoding and validation (off the data path).
        .target(name: "EdgeConfig", dependencies: ["EdgeHTTP", "EdgeProtect", "EdgeUpstream", "EdgeJSON", "EdgeIO"]),
        // I/O: epoll, sockets, threads, clocks.
        .target(name: "CEdgeIO"),
        // CRC32C with the SSE4.2 instruction (header-only), for the disk tier's checksums.
        .target(name: "CEdgeCRC"),
        .target(name: "EdgeIO", dependencies: ["CEdgeIO"], swiftSettings: fast),
        // TLS termination (OpenSSL): per-tenant contexts, SNI, internal CA.
        .target(name: "EdgeTLS", dependencies: ["COpenSSL", "CEdgeShims", "EdgeIO", "EdgeHTTP"]),
        // The disk tier: segment files, their index, the tiered store (I/O threads of its own).
        .target(name: "EdgeDisk", dependencies: ["EdgeCache", "EdgeHTTP", "EdgeIO", "CEdgeIO", "CEdgeCRC"], swiftSettings: fast),
        // The proxy pipeline.
        .target(name: "EdgeProxy", dependencies: ["EdgeHTTP", "EdgeHTTP2", "EdgeIO", "EdgeConfig", "EdgeUpstream", "EdgeTLS", "EdgeCache", "EdgeCompress", "EdgeProtect"],
                swiftSettings: fast),
        // The ACME client (RFC 8555) and the manager that keeps tenants' certificates (threads of its own).
        .target(name: "EdgeACME", dependencies: ["EdgeTLS", "EdgeConfig", "EdgeHTTP", "EdgeIO", "EdgeJSON"]),
        // The admin API (Unix socket / loopback TCP, JSON): off the data path.
        // Nothing edged links imports Foundation (ARCHITECTURE.md: its runtime and ICU
        // data cost ~6 MB of RSS per process); edgectl and the tests may.
        .target(name: "EdgeAdminClient", dependencies: ["EdgeIO", "EdgeHTTP", "EdgeProtect", "EdgeJSON"]),
        .target(name: "EdgeAdmin", dependencies: ["EdgeProxy", "EdgeIO", "EdgeHTTP", "EdgeConfig", "EdgeAdminClient", "EdgeACME", "EdgeJSON"]),
        .executableTarget(name: "edged", dependencies: ["EdgeProxy", "EdgeAdmin", "EdgeACME", "EdgeConfig", "EdgeCache", "EdgeDisk", "CEdgeShims"]),
        // The operator's command line, a client of the admin API.
        .executableTarget(name: "edgectl", dependencies: ["EdgeIO", "EdgeHTTP", "EdgeAdminClient"]),
        // A benchmark of the disk tier's index rebuild (tools/bench/disk.sh runs it).
        .executableTarget(name: "edge-disk-bench", dependencies: ["EdgeDisk", "EdgeCache", "EdgeHTTP", "EdgeIO"], path: "tools/bench/disk",
                          swiftSettings: fast),

        .testTarget(name: "EdgeHTTPTests", dependencies: ["EdgeHTTP"]),
        .testTarget(name: "EdgeJSONTests", dependencies: ["EdgeJSON", "EdgeHTTP"]),
        .testTarget(name: "EdgeIOTests", dependencies: ["EdgeIO"]),
        .testTarget(name: "EdgeHTTP2Tests", dependencies: ["EdgeHTTP2"]),
        .testTarget(name: "EdgeProtectTests", dependencies: ["EdgeProtect", "EdgeHTTP"]),
        .testTarget(name: "EdgeUpstreamTests", dependencies: ["EdgeUpstream", "EdgeHTTP"]),
        .testTarget(name: "EdgeConfigTests", dependencies: ["EdgeConfig", "EdgeProtect"]),
        .testTarget(name: "EdgeTLSTests", dependencies: ["EdgeTLS"]),
        .testTarget(name: "EdgeACMETests", dependencies: ["EdgeACME", "EdgeTLS"]),
        .testTarget(name: "EdgeCacheTests", dependencies: ["EdgeCache", "EdgeHTTP"]),
        .testTarget(name: "EdgeProxyTests", dependencies: ["EdgeProxy", "EdgeAdmin", "EdgeConfig", "EdgeIO", "EdgeHTTP", "EdgeCache", "EdgeProtect", "EdgeDisk"]),
        .testTarget(name: "EdgeDiskTests", dependencies: ["EdgeDisk", "EdgeCache", "EdgeHTTP"]),
        .testTarget(name: "EdgeAdminTests", dependencies: ["EdgeAdmin", "EdgeHTTP", "EdgeJSON"]),
        .testTarget(name: "EdgeCompressTests", dependencies: ["EdgeCompress", "EdgeHTTP"]),
    ]
)

// Release builds link the Swift runtime (and, for edgectl, Foundation) statically into each
// executable: one file to deploy, calls into the runtime (retain, release)
// direct instead of through the PLT, and less resident memory than mapping
// libswiftCore, libFoundation, FoundationEssentials and ICU whole (edged idle:
// 24.3 MB of RSS linked dynamically, 17.9 MB statically). Every Swift module
// is compiled for it (the flag chooses the static libraries' autolink entries)
// and every executable linked with it. Debug builds and tests stay dynamic.
// The executables stay position-independent (ASLR) and are linked by the
// toolchain's lld with packed relative relocations (DT_RELR, glibc 2.36+): the
// static runtime's ~76,000 pointer fixups take 15 KB instead of 1.8 MB, which
// the loader read at every start and which stayed resident (edged idle:
// 18.3 MB of RSS with 24-byte RELA entries, 16.0 MB with RELR).
let staticRuntime = "-static-stdlib"
let packedRelocations = ["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"]
for target in package.targets where target.type == .regular || target.type == .executable {
    if target.name.hasPrefix("C") { continue }
    target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags([staticRuntime], .when(configuration: .release))]
    if target.type == .executable {
        target.linkerSettings = (target.linkerSettings ?? []) + [.unsafeFlags([staticRuntime] + packedRelocations, .when(configuration: .release))]
    }
}
