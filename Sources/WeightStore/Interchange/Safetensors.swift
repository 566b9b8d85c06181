import Foundation

/// Hugging Face's .safetensors: an 8-byte little-endian header length, a JSON header, then the
/// tensors' bytes. Read in place from the mapping. Float8 types have no .wpk dtype and are
/// refused with a clear message; every other dtype is kept (half types widened by policy).
public enum Safetensors {
    static let dtypes: [String: DType] = [
        "F64": .float64, "F32": .float32, "F16": .float16, "BF16": .bfloat16,
        "I64": .int64, "I32": .int32, "I16": .int16, "I8": .int8,
        "U64": .uint64, "U32": .uint32, "U16": .uint16, "U8": .uint8, "BOOL": .bool,
    ]

    static func read(path: String, policy: HalfPolicy, prefix: String = "") throws -> InputBundle {
        let file = try MappedFile(path: path)
        let bytes = file.bytes
        func fail(_ reason: String) -> InterchangeError { InterchangeError(path, reason) }
        guard bytes.count >= 8 else { throw fail("too small to be a .safetensors file (\(bytes.count) bytes)") }
        if String(decoding: bytes.prefix(64), as: UTF8.self).hasPrefix("version https://git-lfs") {
            throw fail("this is a git-LFS pointer, not the weights; fetch them with 'git lfs pull'")
        }
        let headerLength = bytes.loadUnaligned(as: UInt64.self).littleEndian
        guard headerLength <= 100_000_000, headerLength <= UInt64(bytes.count - 8) else {
            throw fail("header length \(headerLength) does not fit in the file: not a .safetensors file?")
        }
        let dataStart = 8 + Int(headerLength)
        let json = Data(bytes[8..<dataStart])
        guard let object = try? JSONSerialization.jsonObject(with: json), let header = object as? [String: Any] else {
            throw fail("header is not a JSON object")
        }
        var bundle = InputBundle()
        var entries: [(name: String, begin: Int, tensor: InputTensor)] = []
        for (name, value) in header {
            if name == "__metadata__" {
                guard let meta = value as? [String: Any] else { throw fail("__metadata__ is not an object") }
                for (k, v) in meta {
                    guard let s = v as? String else { throw fail("__metadata__ value for '\(k)' is not a string") }
                    bundle.metadata.append((k, .string(s)))
                }
                continue
            }
            guard let entry = value as? [String: Any], let dtypeName = entry["dtype"] as? String,
                  let shapeAny = entry["shape"] as? [Any], let offsetsAny = entry["data_offsets"] as? [Any],
                  offsetsAny.count == 2 else { throw fail("tensor '\(name)' has a malformed entry") }
            guard let dtype = dtypes[dtypeName] else {
                throw fail("tensor '\(name)' has dtype \(dtypeName), which .wpk cannot store (float8 is not supported)")
            }
            let shape = try shapeAny.map { d -> Int in
                guard let n = (d as? NSNumber)?.intValue, n >= 0 else { throw fail("tensor '\(name)' has a bad shape") }
                return n
            }
            guard shape.count <= WPKFormat.maxRank else { throw fail("tensor '\(name)' has rank \(shape.count) > 8") }
            let offsets = try offsetsAny.map { d -> Int in
                guard let n = (d as? NSNumber)?.intValue, n >= 0 else { throw fail("tensor '\(name)' has bad offsets") }
                return n
            }
            var expected = dtype.byteSize
            for d in shape {
                let (p, o) = expected.multipliedReportingOverflow(by: d)
                guard !o else { throw fail("tensor '\(name)' is too large") }
                expected = p
            }
            guard offsets[0] <= offsets[1], offsets[1] - offsets[0] == expected,
                  offsets[1] <= bytes.count - dataStart else {
                throw fail("tensor '\(name)': data_offsets \(offsets) do not match its shape \(shape) or the file size")
            }
            let data = UnsafeRawBufferPointer(rebasing: bytes[(dataStart + offsets[0])..<(dataStart + offsets[1])])
            let stored = ElementConversion.storedType(for: dtype, policy: policy)
            let source = ElementConversion.source(bytes: data, owner: file, from: dtype, to: stored, shape: shape,
                                                  bigEndian: false, fortranOrder: false)
            entries.append((name, offsets[0], InputTensor(name: prefix + name, dtype: stored, sourceDType: dtype,
                                                           shape: shape, source: source)))
        }
        // File order, so packing reads the input front to back.
        bundle.tensors = entries.sorted { ($0.begin, $0.name) < ($1.begin, $1.name) }.map(\.tensor)
        return bundle
    }

    static func name(of dtype: DType) -> String { dtypes.first { $0.value == dtype }!.key }

    /// Writes every tensor of `store` (dtypes as stored) and its string metadata.
    public static func write(_ store: WeightStore, to path: String) throws {
        var header: [String: Any] = [:]
        var offset = 0
        for info in store.infos {
            guard let dtype = info.dtype else { throw InterchangeError(path, "tensor '\(info.name)' has an unknown dtype") }
            header[info.name] = ["dtype": name(of: dtype), "shape": info.shape, "data_offsets": [offset, offset + info.rawBytes]]
            offset += info.rawBytes
        }
        if !store.typedMetadata.isEmpty {
            header["__metadata__"] = Dictionary(uniqueKeysWithValues: store.typedMetadata.map { ($0.key, $0.value.description) })
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
        json.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - json.count % 8) % 8))
        let out = try FileOutput(path: path)
        do {
            var prefix = ByteSink()
            prefix.write(UInt64(json.count))
            try out.write(prefix.bytes)
            try out.write(Array(json))
            for info in store.infos { try store.withRawBytes(info.name) { try out.write($0) } }
            try out.commit()
        } catch {
            out.abandon()
            throw error
        }
    }
}
