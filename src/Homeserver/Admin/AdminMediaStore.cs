using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>A local upload as the admin API lists it.</summary>
public sealed class AdminMediaRow
{
    public string MediaId { get; init; } = "";
    public string? ContentType { get; init; }
    public string? UploadName { get; init; }
    public long SizeBytes { get; init; }
    public long CreatedTs { get; init; }
    public string? QuarantinedBy { get; init; }
    public long SafeFromQuarantine { get; init; }
}

/// <summary>A user's uploads in total, with the display name as stored (JSON text).</summary>
public sealed class AdminMediaUsageRow
{
    public string UserId { get; init; } = "";
    public string? DisplaynameJson { get; init; }
    public long MediaCount { get; init; }
    public long MediaLength { get; init; }
}

/// <summary>Which users' uploads <c>GET /_synapse/admin/v1/statistics/users/media</c> totals, and in which order.</summary>
public sealed record AdminMediaUsageFilter(long? FromTs, long? UntilTs, string? SearchTerm, string OrderBy, bool Backwards);

/// <summary>
/// The SQL of the media admin API over local uploads (uploads still pending are not media yet). This server keeps no
/// access times, so that sort order of Synapse orders by media ID alone.
/// </summary>
public sealed class AdminMediaStore
{
    /// <summary>Synapse's <c>order_by</c> for a user's media, as columns (null for what is not recorded here: the same for all).</summary>
    public static readonly IReadOnlyDictionary<string, string?> UserMediaSortColumns = new Dictionary<string, string?>
    {
        ["media_id"] = "media_id", ["upload_name"] = "upload_name", ["created_ts"] = "created_ts", ["last_access_ts"] = null,
        ["media_length"] = "size_bytes", ["media_type"] = "content_type", ["quarantined_by"] = "quarantined_by", ["safe_from_quarantine"] = "safe_from_quarantine",
    };

    public static readonly IReadOnlyDictionary<string, string> UsageSortColumns = new Dictionary<string, string>
    {
        ["user_id"] = "user_id", ["displayname"] = "displayname_json", ["media_length"] = "media_length", ["media_count"] = "media_count",
    };

    private const string Uploaded = "server_name = @serverName AND storage_key IS NOT NULL";

    public async Task<(IReadOnlyList<AdminMediaRow> Rows, long Total)> ListForUserAsync(
        DbSession s, string serverName, string userId, int from, int limit, string orderBy, bool backwards)
    {
        var args = new { serverName, userId, limit = (long)limit, offset = (long)from };
        var total = await s.ExecuteScalarAsync<long>($"SELECT COUNT(*) FROM media WHERE user_id = @userId AND {Uploaded}", args);
        var direction = backwards ? "DESC" : "ASC";
        var order = UserMediaSortColumns[orderBy] is { } column
            ? $"CASE WHEN {column} IS NULL THEN 1 ELSE 0 END {direction}, {column} {direction}, media_id ASC"
            : $"media_id {direction}";
        var rows = await s.QueryAsync<AdminMediaRow>($"""
            SELECT media_id, content_type, upload_name, COALESCE(size_bytes, 0) AS size_bytes, created_ts, quarantined_by, safe_from_quarantine FROM media
            WHERE user_id = @userId AND {Uploaded} ORDER BY {order} LIMIT @limit OFFSET @offset
            """, args);
        return (rows.ToList(), total);
    }

    public async Task<(IReadOnlyList<AdminMediaUsageRow> Rows, long Total)> UsageAsync(
        DbSession s, string serverName, AdminMediaUsageFilter filter, int from, int limit)
    {
        var args = new SqlArgs();
        args.Add("serverName", serverName);
        var conditions = new List<string>();
        if (filter.FromTs is { } fromTs)
        {
            conditions.Add("m.created_ts >= @fromTs");
            args.Add("fromTs", fromTs);
        }
        if (filter.UntilTs is { } untilTs)
        {
            conditions.Add("m.created_ts <= @untilTs");
            args.Add("untilTs", untilTs);
        }
        var search = "";
        if (filter.SearchTerm is { Length: > 0 } term)
        {
            search = @"WHERE user_id LIKE @localpartPattern ESCAPE '\' OR LOWER(displayname_json) LIKE @namePattern ESCAPE '\'";
            args.Add("localpartPattern", $"@%{AdminUserStore.EscapeLike(term.ToLowerInvariant())}%:%");
            args.Add("namePattern", $"%{AdminUserStore.EscapeLike(term.ToLowerInvariant())}%");
        }
        var usage = $"""
            (SELECT m.user_id, dn.value_json AS displayname_json, COUNT(*) AS media_count,
                    CAST(SUM(COALESCE(m.size_bytes, 0)) AS BIGINT) AS media_length
             FROM media m LEFT JOIN profile_fields dn ON dn.user_id = m.user_id AND dn.field = 'displayname'
             WHERE m.user_id IS NOT NULL AND m.server_name = @serverName AND m.storage_key IS NOT NULL
             {string.Concat(conditions.Select(c => " AND " + c))}
             GROUP BY m.user_id, dn.value_json) AS usage
            """;
        var total = await s.ExecuteScalarAsync<long>($"SELECT COUNT(*) FROM {usage} {search}", args);
        var column = UsageSortColumns[filter.OrderBy];
        var direction = filter.Backwards ? "DESC" : "ASC";
        args.Add("limit", (long)limit);
        args.Add("offset", (long)from);
        var rows = await s.QueryAsync<AdminMediaUsageRow>($"""
            SELECT * FROM {usage} {search}
            ORDER BY CASE WHEN {column} IS NULL THEN 1 ELSE 0 END {direction}, {column} {direction}, user_id ASC LIMIT @limit OFFSET @offset
            """, args);
        return (rows.ToList(), total);
    }
}
