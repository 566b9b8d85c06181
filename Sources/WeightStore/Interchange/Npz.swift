import CZlib
import LazyTensor

/// NumPy's .npz: a zip archive of .npy members. Read: stored members are parsed in place in
/// the mapping; deflated members are inflated into memory one at a time (zip gives no way to
/// map them). Zip64 sizes and offsets are understood. Written: stored members, zip64 not
/// needed below 4 GiB (larger members are refused with a pointer to .safetensors).
public enum Npz {
    static func read(path: String, policy: HalfPolicy) throws -> InputBundle {
        let file = try MappedFile(path: path)
        let bytes = file.bytes
        func fail(_ reason: String) -> InterchangeError { InterchangeError(path, reason) }

        // The end-of-central-directory record is in the last 64 KiB + 22 bytes.
        var eocd = -1
        var position = bytes.count - 22
        while position >= max(0, bytes.count - 22 - 65535) {
            if bytes.loadUnaligned(fromByteOffset: position, as: UInt32.self) == 0x0605_4B50 { eocd = position; break }
            position -= 1
        }
        guard eocd >= 0 else { throw fail("not a zip (.npz) file: no end-of-central-directory record") }
        var c = ByteCursor(bytes, at: eocd + 10)
        var entryCount = UInt64(c.read(UInt16.self)!)
        _ = c.read(UInt32.self)!
        var directoryOffset = UInt64(c.read(UInt32.self)!)
        if entryCount == 0xFFFF || directoryOffset == 0xFFFF_FFFF {
            // Zip64: the locator sits just before the EOCD and points at the zip64 EOCD.
            guard eocd >= 20, bytes.loadUnaligned(fromByteOffset: eocd - 20, as: UInt32.self) == 0x0706_4B50 else {
                throw fail("zip64 locator missing")
            }
            var l = ByteCursor(bytes, at: eocd - 20 + 8)
            let z = Int(clamping: l.read(UInt64.self)!)
            guard z >= 0, z + 56 <= bytes.count, bytes.loadUnaligned(fromByteOffset: z, as: UInt32.self) == 0x0606_4B50 else {
                throw fail("zip64 end record is damaged")
            }
            var zc = ByteCursor(bytes, at: z + 32)
            entryCount = zc.read(UInt64.self)!
            _ = zc.read(UInt64.self)!
            directoryOffset = zc.read(UInt64.self)!
        }
        var bundle = InputBundle()
        var d = ByteCursor(bytes, at: Int(clamping: directoryOffset))
        guard directoryOffset < UInt64(bytes.count) else { throw fail("central directory outside the file") }
        for _ in 0..<entryCount {
            guard d.read(UInt32.self) == 0x0201_4B50, d.skip(4), let flags = d.read(UInt16.self),
                  let method = d.read(UInt16.self), d.skip(8), let compressed32 = d.read(UInt32.self),
                  let uncompressed32 = d.read(UInt32.self), let nameLength = d.read(UInt16.self),
                  let extraLength = d.read(UInt16.self), let commentLength = d.read(UInt16.self), d.skip(8),
                  let localOffset32 = d.read(UInt32.self), let nameBytes = d.readBytes(Int(nameLength)),
                  let extra = d.readBytes(Int(extraLength)), d.skip(Int(commentLength))
            else { throw fail("zip central directory is damaged") }
            guard flags & 1 == 0 else { throw fail("encrypted zip members are not supported") }
            var compressed = UInt64(compressed32), uncompressed = UInt64(uncompressed32)
            var localOffset = UInt64(localOffset32)
            // Zip64 extended information: only the fields that overflowed are present, in order.
            var e = ByteCursor(extra)
            while e.remaining >= 4 {
                let tag = e.read(UInt16.self)!, size = Int(e.read(UInt16.self)!)
                guard let field = e.readBytes(size) else { break }
                if tag == 1 {
                    var f = ByteCursor(field)
                    if uncompressed32 == 0xFFFF_FFFF { uncompressed = f.read(UInt64.self) ?? uncompressed }
                    if compressed32 == 0xFFFF_FFFF { compressed = f.read(UInt64.self) ?? compressed }
                    if localOffset32 == 0xFFFF_FFFF { localOffset = f.read(UInt64.self) ?? localOffset }
                }
            }
            let memberName = String(decoding: nameBytes, as: UTF8.self)
            guard memberName.hasSuffix(".npy") else { continue }
            let name = String(memberName.dropLast(4))
            var l = ByteCursor(bytes, at: Int(clamping: localOffset))
            guard localOffset < UInt64(bytes.count), l.read(UInt32.self) == 0x0403_4B50, l.skip(22),
                  let localName = l.read(UInt16.self), let localExtra = l.read(UInt16.self),
                  l.skip(Int(localName) + Int(localExtra)), UInt64(l.remaining) >= compressed
            else { throw fail("member '\(memberName)' is damaged or truncated") }
            let data = UnsafeRawBufferPointer(rebasing: bytes[l.position..<l.position + Int(compressed)])
            let member = "\(path)[\(memberName)]"
            switch method {
            case 0:
                bundle.tensors += try Npy.read(bytes: data, owner: file, path: member, name: name, policy: policy).tensors
            case 8:
                guard uncompressed < UInt64(Int.max) else { throw fail("member '\(memberName)' is too large") }
                let block = Storage(allocatingByteCount: Int(uncompressed))
                let out = UnsafeMutableRawBufferPointer(start: block.baseAddress, count: Int(uncompressed))
                try inflate(data, into: out, member: member)
                bundle.tensors += try Npy.read(bytes: UnsafeRawBufferPointer(out), owner: block, path: member,
                                               name: name, policy: policy).tensors
            default:
                throw fail("member '\(memberName)' uses zip method \(method); only stored and deflated are read")
            }
        }
        return bundle
    }

    private static func inflate(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
                                member: String) throws {
        var stream = z_stream()
        guard inflateInit2_(&stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw InterchangeError(member, "zlib could not start")
        }
        defer { inflateEnd(&stream) }
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(input.count)
        stream.next_out = output.baseAddress?.assumingMemoryBound(to: Bytef.self)
        stream.avail_out = uInt(output.count)
        let status = CZlib.inflate(&stream, Z_FINISH)
        guard status == Z_STREAM_END, Int(stream.total_out) == output.count else {
            throw InterchangeError(member, "deflated data is damaged (zlib status \(status))")
        }
    }

    static func crc32(_ bytes: UnsafeRawBufferPointer, _ running: UInt32 = 0) -> UInt32 {
        UInt32(CZlib.crc32_z(uLong(running), bytes.baseAddress?.assumingMemoryBound(to: Bytef.self), bytes.count))
    }

    /// Writes every tensor of `store` as a stored member `NAME.npy`.
    public static func write(_ store: WeightStore, to path: String) throws {
        let out = try FileOutput(path: path)
        do {
            var central = ByteSink()
            for info in store.infos {
                guard let dtype = info.dtype else { throw InterchangeError(path, "tensor '\(info.name)' has an unknown dtype") }
                let header = try Npy.header(dtype: dtype, shape: info.shape)
                let size = UInt64(header.count + info.rawBytes)
                guard size < 0xFFFF_FFFF, out.position < 0xFFFF_FFFF else {
                    throw InterchangeError(path, "npz output is limited to 4 GiB; unpack to .safetensors instead")
                }
                let crc = try store.withRawBytes(info.name) { raw in
                    header.withUnsafeBytes { crc32(raw, crc32($0)) }
                }
                let name = Array((info.name + ".npy").utf8)
                let offset = UInt32(out.position)
                var local = ByteSink()
                local.write(UInt32(0x0403_4B50)); local.write(UInt16(20)); local.write(UInt16(0x0800))
                local.write(UInt16(0)); local.write(UInt32(0x0021_0000)) // stored; 1980-01-01 00:00
                local.write(crc); local.write(UInt32(size)); local.write(UInt32(size))
                local.write(UInt16(name.count)); local.write(UInt16(0)); local.write(name)
                try out.write(local.bytes)
                try out.write(header)
                try store.withRawBytes(info.name) { try out.write($0) }
                central.write(UInt32(0x0201_4B50)); central.write(UInt16(20)); central.write(UInt16(20))
                central.write(UInt16(0x0800)); central.write(UInt16(0)); central.write(UInt32(0x0021_0000))
                central.write(crc); central.write(UInt32(size)); central.write(UInt32(size))
                central.write(UInt16(name.count)); central.write(UInt16(0)); central.write(UInt16(0))
                central.write(UInt16(0)); central.write(UInt16(0)); central.write(UInt32(0o100644 << 16))
                central.write(offset); central.write(name)
            }
            let directoryOffset = out.position
            guard directoryOffset + UInt64(central.count) < 0xFFFF_FFFF, store.infos.count < 0xFFFF else {
                throw InterchangeError(path, "npz output is limited to 4 GiB and 65535 arrays; unpack to .safetensors instead")
            }
            try out.write(central.bytes)
            var end = ByteSink()
            end.write(UInt32(0x0605_4B50)); end.write(UInt16(0)); end.write(UInt16(0))
            end.write(UInt16(store.infos.count)); end.write(UInt16(store.infos.count))
            end.write(UInt32(central.count)); end.write(UInt32(directoryOffset)); end.write(UInt16(0))
            try out.write(end.bytes)
            try out.commit()
        } catch {
            out.abandon()
            throw error
        }
    }
}
