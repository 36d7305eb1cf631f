using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.ApplicationServices;

public sealed record OutboxRow(long Id, string Kind, string Json);

/// <summary>A transaction handed to an application service and not yet acknowledged: retried as it was.</summary>
public sealed record InFlightTransaction(long TxnId, long LastRowId);

/// <summary>
/// What each application service still has to receive, in order, and the transaction in flight. A transaction is
/// fixed when first sent (its ID and its last row), so a retry carries exactly the same events under the same ID.
/// </summary>
public sealed class AppServiceOutbox(StreamPositions streams)
{
    public const string Event = "event";
    public const string Ephemeral = "ephemeral";
    public const string ToDevice = "to_device";
    public const string DeviceList = "device_list";
    public const string KeyCounts = "key_counts";

    public async Task AddAsync(DbSession s, string appServiceId, string kind, string json) =>
        await s.ExecuteAsync("INSERT INTO appservice_outbox (id, as_id, kind, json) VALUES (@id, @appServiceId, @kind, @json)",
            new { id = await streams.NextAsync(s, "appservice_outbox"), appServiceId, kind, json });

    public Task<InFlightTransaction?> InFlightAsync(DbSession s, string appServiceId) =>
        s.QuerySingleOrDefaultAsync<InFlightTransaction>("SELECT txn_id, last_row_id FROM appservice_txns WHERE as_id = @appServiceId",
            new { appServiceId });

    /// <summary>The rows of the transaction in flight, or the next at most <paramref name="limit"/> rows.</summary>
    public async Task<List<OutboxRow>> RowsAsync(DbSession s, string appServiceId, long? upTo, int limit) =>
        (await s.QueryAsync<OutboxRow>($"""
            SELECT id, kind, json FROM appservice_outbox WHERE as_id = @appServiceId {(upTo is null ? "" : "AND id <= @upTo")}
            ORDER BY id LIMIT @limit
            """, new { appServiceId, upTo, limit = (long)limit })).ToList();

    public Task StartAsync(DbSession s, string appServiceId, InFlightTransaction transaction) =>
        s.ExecuteAsync("INSERT INTO appservice_txns (as_id, txn_id, last_row_id) VALUES (@appServiceId, @TxnId, @LastRowId)",
            new { appServiceId, transaction.TxnId, transaction.LastRowId });

    /// <summary>The service acknowledged the transaction: its rows and the in-flight record go.</summary>
    public async Task CompleteAsync(DbSession s, string appServiceId, InFlightTransaction transaction)
    {
        await s.ExecuteAsync("DELETE FROM appservice_outbox WHERE as_id = @appServiceId AND id <= @LastRowId", new { appServiceId, transaction.LastRowId });
        await s.ExecuteAsync("DELETE FROM appservice_txns WHERE as_id = @appServiceId", new { appServiceId });
    }

    /// <summary>How many rows each service has still to acknowledge (services with none are left out).</summary>
    public async Task<List<(string AppServiceId, long Count)>> PendingCountsAsync(DbSession s) =>
        (await s.QueryAsync<(string, long)>("SELECT as_id, COUNT(*) FROM appservice_outbox GROUP BY as_id")).ToList();

    public async Task<List<string>> PendingServicesAsync(DbSession s) =>
        (await s.QueryAsync<string>("SELECT DISTINCT as_id FROM appservice_outbox")).ToList();
}
