using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.E2ee;

public sealed record ToDeviceRow(long StreamId, string MessageJson);

/// <summary>Send-to-device messages waiting for a local device, and the transaction IDs already processed.</summary>
public sealed class ToDeviceStore(StreamPositions streams)
{
    public async Task<long> AddAsync(DbSession s, string userId, string deviceId, string messageJson)
    {
        var streamId = await streams.NextAsync(s, "to_device");
        await s.ExecuteAsync("INSERT INTO to_device_messages (stream_id, user_id, device_id, message_json) VALUES (@streamId, @userId, @deviceId, @messageJson)",
            new { streamId, userId, deviceId, messageJson });
        return streamId;
    }

    public SqlRead<ToDeviceRow, List<ToDeviceRow>> Pending(string userId, string deviceId, long after, long upTo, int limit) =>
        SqlReads.Rows<ToDeviceRow>("""
            SELECT stream_id, message_json FROM to_device_messages
            WHERE user_id = @userId AND device_id = @deviceId AND stream_id > @after AND stream_id <= @upTo
            ORDER BY stream_id LIMIT @limit
            """, new { userId, deviceId, after, upTo, limit = (long)limit });

    public SqlRead<long, bool> AnyUpTo(string userId, string deviceId, long upTo) => new(
        "SELECT stream_id FROM to_device_messages WHERE user_id = @userId AND device_id = @deviceId AND stream_id <= @upTo LIMIT 1",
        new { userId, deviceId, upTo }, rows => rows.Any());

    /// <summary>Messages the device acknowledged by syncing with a token past them.</summary>
    public Task DeleteDeliveredAsync(DbSession s, string userId, string deviceId, long upTo) =>
        s.ExecuteAsync("DELETE FROM to_device_messages WHERE user_id = @userId AND device_id = @deviceId AND stream_id <= @upTo",
            new { userId, deviceId, upTo });

    /// <summary>Records a sender's transaction ID; false when it was already processed.</summary>
    public async Task<bool> TryAddTxnAsync(DbSession s, string userId, string deviceId, string txnId, long now) =>
        await s.ExecuteAsync("""
            INSERT INTO to_device_txns (user_id, device_id, txn_id, created_ts) VALUES (@userId, @deviceId, @txnId, @now)
            ON CONFLICT (user_id, device_id, txn_id) DO NOTHING
            """, new { userId, deviceId, txnId, now }) == 1;
}
