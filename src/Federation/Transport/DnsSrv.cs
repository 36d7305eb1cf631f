using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace Matrix.Federation.Transport;

/// <summary>A DNS SRV record.</summary>
public sealed record SrvRecord(ushort Priority, ushort Weight, ushort Port, string Target);

/// <summary>
/// SRV lookups through the system resolver (glibc <c>res_query</c>; .NET has no SRV API), with the answer section of
/// the returned DNS message parsed here.
/// </summary>
public static partial class DnsSrv
{
    private const int ClassIn = 1;
    private const int TypeSrv = 33;

    [LibraryImport("libc.so.6", EntryPoint = "res_query", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int ResQuery(string name, int dnsClass, int type, byte[] answer, int answerLength);

    /// <summary>The SRV records for a name, ordered by priority (empty when there are none or the lookup fails).</summary>
    public static Task<IReadOnlyList<SrvRecord>> LookupAsync(string name, CancellationToken ct) => Task.Run(() =>
    {
        // res_query blocks; glibc keeps its resolver state per thread, so concurrent calls are safe.
        var buffer = new byte[4096];
        var length = ResQuery(name, ClassIn, TypeSrv, buffer, buffer.Length);
        return length <= 0 ? (IReadOnlyList<SrvRecord>)[] : Parse(buffer.AsSpan(0, Math.Min(length, buffer.Length)));
    }, ct);

    /// <summary>Reads the SRV answers of a DNS response message; malformed messages yield what was read before the fault.</summary>
    public static IReadOnlyList<SrvRecord> Parse(ReadOnlySpan<byte> message)
    {
        var records = new List<SrvRecord>();
        if (message.Length < 12)
            return records;
        var questions = BinaryPrimitives.ReadUInt16BigEndian(message[4..]);
        var answers = BinaryPrimitives.ReadUInt16BigEndian(message[6..]);
        var offset = 12;
        try
        {
            for (var i = 0; i < questions; i++)
                offset = SkipName(message, offset) + 4;
            for (var i = 0; i < answers; i++)
            {
                offset = SkipName(message, offset);
                var type = BinaryPrimitives.ReadUInt16BigEndian(message[offset..]);
                var dataLength = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 8)..]);
                var data = offset + 10;
                if (type == TypeSrv && dataLength >= 7)
                    records.Add(new SrvRecord(
                        BinaryPrimitives.ReadUInt16BigEndian(message[data..]),
                        BinaryPrimitives.ReadUInt16BigEndian(message[(data + 2)..]),
                        BinaryPrimitives.ReadUInt16BigEndian(message[(data + 4)..]),
                        ReadName(message, data + 6)));
                offset = data + dataLength;
            }
        }
        catch (Exception e) when (e is ArgumentOutOfRangeException or IndexOutOfRangeException)
        {
        }
        return records.OrderBy(r => r.Priority).ThenByDescending(r => r.Weight).ToList();
    }

    private static int SkipName(ReadOnlySpan<byte> message, int offset)
    {
        while (true)
        {
            var length = message[offset];
            if (length == 0)
                return offset + 1;
            if ((length & 0xC0) == 0xC0)
                return offset + 2;
            offset += length + 1;
        }
    }

    private static string ReadName(ReadOnlySpan<byte> message, int offset)
    {
        var labels = new List<string>();
        for (var jumps = 0; jumps < 32;)
        {
            var length = message[offset];
            if (length == 0)
                break;
            if ((length & 0xC0) == 0xC0)
            {
                offset = ((length & 0x3F) << 8) | message[offset + 1];
                jumps++;
                continue;
            }
            labels.Add(Encoding.ASCII.GetString(message.Slice(offset + 1, length)));
            offset += length + 1;
        }
        return string.Join('.', labels);
    }
}
