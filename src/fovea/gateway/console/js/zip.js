// Reading a .zip in the browser without a library: the central directory, then each file stored (method 0)
// or deflated (method 8, through the browser's DecompressionStream). Enough for a folder of photos zipped by
// any common tool; ZIP64 archives (over 4 GiB) and encrypted entries are refused.

function u16(view, at) { return view.getUint16(at, true); }
function u32(view, at) { return view.getUint32(at, true); }

/** [{name, bytes}] of every file in the archive (folders left out). */
export async function unzip(buffer) {
  const view = new DataView(buffer);
  let end = -1;
  for (let i = buffer.byteLength - 22; i >= Math.max(0, buffer.byteLength - 22 - 65535); i--) {
    if (u32(view, i) === 0x06054b50) { end = i; break; }
  }
  if (end < 0) throw new Error("this is not a zip archive (no end of central directory)");
  const count = u16(view, end + 10);
  let at = u32(view, end + 16);
  if (at === 0xffffffff) throw new Error("ZIP64 archives are not read here: zip fewer or smaller photos");
  const decoder = new TextDecoder();
  const files = [];
  for (let n = 0; n < count; n++) {
    if (u32(view, at) !== 0x02014b50) throw new Error("the zip's central directory is damaged");
    const flags = u16(view, at + 8), method = u16(view, at + 10);
    const size = u32(view, at + 20);
    const nameLength = u16(view, at + 28), extraLength = u16(view, at + 30), commentLength = u16(view, at + 32);
    const local = u32(view, at + 42);
    const name = decoder.decode(new Uint8Array(buffer, at + 46, nameLength));
    at += 46 + nameLength + extraLength + commentLength;
    if (name.endsWith("/")) continue;
    if (flags & 1) throw new Error(`${name} is encrypted`);
    const start = local + 30 + u16(view, local + 26) + u16(view, local + 28);
    const data = new Uint8Array(buffer, start, size);
    let bytes;
    if (method === 0) bytes = data.slice();
    else if (method === 8) {
      const inflated = new Blob([data]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
      bytes = new Uint8Array(await new Response(inflated).arrayBuffer());
    } else throw new Error(`${name}: compression method ${method} is not read here (use deflate or store)`);
    files.push({name, bytes});
  }
  return files;
}
