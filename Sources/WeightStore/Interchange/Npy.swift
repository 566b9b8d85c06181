import LazyTensor
/// NumPy's .npy format: a magic string, a version, a header that is a Python dict literal, then
/// the array's bytes. Read: versions 1-3, C and Fortran order, either byte order. Written:
/// version 1 (version 2 when the header needs it), C order, little-endian.
public enum Npy {
    struct Header {
        var dtype: DType
        var bigEndian: Bool
        var fortranOrder: Bool
        var shape: [Int]
        var dataOffset: Int
    }

    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    static func parseHeader(_ bytes: UnsafeRawBufferPointer, path: String) throws -> Header {
        func fail(_ reason: String) -> InterchangeError { InterchangeError(path, reason) }
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw fail("not a .npy file (bad magic)") }
        let major = bytes[6], minor = bytes[7]
        // NumPy knows versions 1.0, 2.0 and 3.0 only.
        guard minor == 0, (1...3).contains(major) else { throw fail("unsupported .npy version \(major).\(minor)") }
        var c = ByteCursor(bytes, at: 8)
        let headerLength: Int
        switch major {
        case 1: headerLength = Int(c.read(UInt16.self)!)
        case 2, 3:
            guard let n = c.read(UInt32.self) else { throw fail("truncated .npy header") }
            headerLength = Int(n)
        default: throw fail("unsupported .npy version \(major)")
        }
        guard let text = c.readBytes(headerLength) else { throw fail("truncated .npy header") }
        // Versions 1 and 2 are latin-1, 3 is UTF-8; the keys and values NumPy writes are ASCII.
        guard let dict = String(validating: text, as: UTF8.self) else { throw fail(".npy header is not text") }
        let entries: [(String, PythonLiteral)]
        do { entries = try PythonLiteral.parseDict(dict) } catch {
            throw fail("malformed .npy header (\(error.reason)): \(DisplayText.excerpt(dict.trimmingCharacters(in: " \n")))")
        }
        // NumPy evaluates the header as a Python dict: a repeated key takes its last value, and
        // the keys must then be exactly these three.
        var fields: [String: PythonLiteral] = [:]
        for (key, value) in entries { fields[key] = value }
        guard fields.keys.sorted() == ["descr", "fortran_order", "shape"] else {
            throw fail(".npy header must have exactly the keys descr, fortran_order and shape; it has \(fields.keys.sorted())")
        }
        guard case let .string(descr)? = fields["descr"] else {
            throw fail("unsupported dtype: structured arrays (a list descr) are not read")
        }
        guard let (dtype, bigEndian) = numpyDType(descr) else {
            throw fail("unsupported dtype '\(DisplayText.excerpt(descr))' (float16/32/64, ints, uints and bool are read)")
        }
        guard case let .bool(fortranOrder)? = fields["fortran_order"] else { throw fail("fortran_order is not True or False") }
        guard case let .tuple(dims)? = fields["shape"] else { throw fail("shape is not a tuple") }
        let shape = try dims.map { d -> Int in
            guard case let .int(n) = d, n >= 0 else { throw fail("shape must be a tuple of non-negative integers") }
            return n
        }
        guard shape.count <= WPKFormat.maxRank else { throw fail("rank \(shape.count) exceeds 8") }
        guard let elements = ShapeRules.elementCount(shape, elementSize: dtype.byteSize) else {
            throw fail("shape \(shape) is too large")
        }
        let count = elements * dtype.byteSize
        let available = bytes.count - c.position
        guard available >= count else {
            throw fail("array data is truncated: \(available) bytes, shape needs \(count)")
        }
        guard available == count else { throw fail("\(available - count) bytes follow the array data") }
        if dtype == .bool, let bad = ElementConversion.invalidBool(in: UnsafeRawBufferPointer(rebasing: bytes[c.position...])) {
            throw fail("bool element \(bad.index) is \(bad.value), not 0 or 1")
        }
        return Header(dtype: dtype, bigEndian: bigEndian, fortranOrder: fortranOrder, shape: shape,
                      dataOffset: c.position)
    }

    static func numpyDType(_ descr: String) -> (DType, Bool)? {
        // A bare code ("f4") is native order, which on every machine wpack runs on is little.
        let order = "<>|=".contains(descr.first ?? " ") ? descr.first! : "="
        let code = order == descr.first ? String(descr.dropFirst()) : descr
        let big = order == ">"
        let table: [String: DType] = [
            "f2": .float16, "f4": .float32, "f8": .float64, "i1": .int8, "i2": .int16, "i4": .int32,
            "i8": .int64, "u1": .uint8, "u2": .uint16, "u4": .uint32, "u8": .uint64, "b1": .bool,
        ]
        return table[code].map { ($0, big) }
    }

    static func descr(_ dtype: DType) throws -> String {
        switch dtype {
        case .float16: "<f2"
        case .float32: "<f4"
        case .float64: "<f8"
        case .int8: "|i1"
        case .int16: "<i2"
        case .int32: "<i4"
        case .int64: "<i8"
        case .uint8: "|u1"
        case .uint16: "<u2"
        case .uint32: "<u4"
        case .uint64: "<u8"
        case .bool: "|b1"
        case .bfloat16: throw InterchangeError("npy", "numpy has no bfloat16: unpack to .safetensors instead")
        case .q8_0, .q4_0, .q4_1: throw InterchangeError("npy", "numpy has no \(dtype) blocks: widen to float32 first")
        }
    }

    /// A version 1.0 header (2.0 if it does not fit), padded so the data starts at a multiple of 64.
    static func header(dtype: DType, shape: [Int]) throws -> [UInt8] {
        let shapeText = shape.isEmpty ? "()" : shape.count == 1 ? "(\(shape[0]),)"
            : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var dict = "{'descr': '\(try descr(dtype))', 'fortran_order': False, 'shape': \(shapeText), }"
        let v1 = 10 + dict.utf8.count + 1 <= 65535 + 10
        let prefix = v1 ? 10 : 12
        let total = (prefix + dict.utf8.count + 1 + 63) / 64 * 64
        dict += String(repeating: " ", count: total - prefix - dict.utf8.count - 1) + "\n"
        var sink = ByteSink()
        sink.write(magic)
        if v1 { sink.write([1, 0] as [UInt8]); sink.write(UInt16(dict.utf8.count)) } else {
            sink.write([2, 0] as [UInt8]); sink.write(UInt32(dict.utf8.count))
        }
        sink.write(Array(dict.utf8))
        return sink.bytes
    }

    /// Reads a standalone .npy file (mapped) as one tensor named after the file.
    static func read(path: String, name: String, policy: HalfPolicy) throws -> InputBundle {
        let file = try MappedFile(path: path)
        return try read(bytes: file.bytes, owner: file, path: path, name: name, policy: policy)
    }

    static func read(bytes: UnsafeRawBufferPointer, owner: AnyObject & Sendable, path: String, name: String,
                     policy: HalfPolicy) throws -> InputBundle {
        let h = try parseHeader(bytes, path: path)
        let stored = ElementConversion.storedType(for: h.dtype, policy: policy)
        let data = UnsafeRawBufferPointer(rebasing: bytes[h.dataOffset...])
        var bundle = InputBundle()
        bundle.tensors.append(InputTensor(
            name: name, dtype: stored, sourceDType: h.dtype, shape: h.shape,
            source: ElementConversion.source(bytes: data, owner: owner, from: h.dtype, to: stored, shape: h.shape,
                                             bigEndian: h.bigEndian, fortranOrder: h.fortranOrder)))
        return bundle
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
