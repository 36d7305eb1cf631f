using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>A report of an event, with the reported event and the room's name and canonical alias events (JSON as stored).</summary>
public sealed class AdminEventReportRow
{
    public string ReportId { get; init; } = "";
    public string Reporter { get; init; } = "";
    public string? RoomId { get; init; }
    public string? EventId { get; init; }
    public string Reason { get; init; } = "";
    public long ReceivedTs { get; init; }
    public string? Sender { get; init; }
    public string? EventJson { get; init; }
    public string? NameEventJson { get; init; }
    public string? AliasEventJson { get; init; }
}

/// <summary>Which event reports <c>GET /_synapse/admin/v1/event_reports</c> lists.</summary>
public sealed record AdminEventReportFilter(string? Reporter, string? RoomId, string? EventSender, bool Backwards);

/// <summary>The SQL of the event report admin API over the reports users make (spec: Reporting content).</summary>
public sealed class AdminEventReportStore
{
    private const string Reports = """
        (SELECT r.report_id, r.reporter, r.room_id, r.event_id, r.reason, r.received_ts, e.sender, e.json AS event_json,
                en.json AS name_event_json, ea.json AS alias_event_json
         FROM reports r
         LEFT JOIN events e ON e.event_id = r.event_id
         LEFT JOIN current_state cn ON cn.room_id = r.room_id AND cn.type = 'm.room.name' AND cn.state_key = ''
         LEFT JOIN events en ON en.event_id = cn.event_id
         LEFT JOIN current_state ca ON ca.room_id = r.room_id AND ca.type = 'm.room.canonical_alias' AND ca.state_key = ''
         LEFT JOIN events ea ON ea.event_id = ca.event_id
         WHERE r.event_id IS NOT NULL) AS event_reports
        """;

    public async Task<(IReadOnlyList<AdminEventReportRow> Rows, long Total)> ListAsync(DbSession s, AdminEventReportFilter filter, int from, int limit)
    {
        var args = new SqlArgs();
        var conditions = new List<string>();
        if (filter.Reporter is { Length: > 0 } reporter)
        {
            conditions.Add("reporter = @reporter");
            args.Add("reporter", reporter);
        }
        if (filter.RoomId is { Length: > 0 } roomId)
        {
            conditions.Add("room_id = @roomId");
            args.Add("roomId", roomId);
        }
        if (filter.EventSender is { Length: > 0 } sender)
        {
            conditions.Add("sender = @sender");
            args.Add("sender", sender);
        }
        var where = conditions.Count == 0 ? "" : "WHERE " + string.Join(" AND ", conditions);
        var total = await s.ExecuteScalarAsync<long>($"SELECT COUNT(*) FROM {Reports} {where}", args);
        var direction = filter.Backwards ? "DESC" : "ASC";
        args.Add("limit", (long)limit);
        args.Add("offset", (long)from);
        var rows = await s.QueryAsync<AdminEventReportRow>(
            $"SELECT * FROM {Reports} {where} ORDER BY received_ts {direction}, report_id {direction} LIMIT @limit OFFSET @offset", args);
        return (rows.ToList(), total);
    }

    public Task<AdminEventReportRow?> GetAsync(DbSession s, string reportId) =>
        s.QuerySingleOrDefaultAsync<AdminEventReportRow>($"SELECT * FROM {Reports} WHERE report_id = @reportId", new { reportId });

    /// <summary>Deletes an event report; false when there was none with that ID.</summary>
    public async Task<bool> DeleteAsync(DbSession s, string reportId) =>
        await s.ExecuteAsync("DELETE FROM reports WHERE report_id = @reportId AND event_id IS NOT NULL", new { reportId }) == 1;
}
