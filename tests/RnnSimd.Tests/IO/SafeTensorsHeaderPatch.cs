using System.Text;
using System.Text.Json.Nodes;

namespace RnnSimd.Tests.IO;

/// <summary>Test files that a writer would never produce: a valid safetensors file with its JSON header edited.</summary>
internal static class SafeTensorsHeaderPatch
{
    /// <summary>
    /// <paramref name="file"/> with its header passed through <paramref name="edit"/> (re-serialised, space-padded to 8
    /// bytes) and its data kept, or only the first <paramref name="keepData"/> bytes of it.
    /// </summary>
    public static byte[] Apply(byte[] file, Action<JsonObject> edit, long? keepData = null)
    {
        int n = (int)BitConverter.ToUInt64(file, 0);
        var header = JsonNode.Parse(Encoding.UTF8.GetString(file, 8, n))!.AsObject();
        edit(header);
        byte[] json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (json.Length + 7) / 8 * 8;
        long data = keepData ?? file.Length - 8 - n;
        var patched = new byte[8 + padded + data];
        BitConverter.GetBytes((ulong)padded).CopyTo(patched, 0);
        json.CopyTo(patched, 8);
        for (int i = json.Length; i < padded; i++) patched[8 + i] = (byte)' ';
        Array.Copy(file, 8 + n, patched, 8 + padded, data);
        return patched;
    }
}
