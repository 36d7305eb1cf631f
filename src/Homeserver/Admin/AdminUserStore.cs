using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>One account as the admin API lists it: the user's row with its profile and when any of its devices was last seen.</summary>
public sealed class AdminUserRow
{
    public string UserId { get; init; } = "";
    public long IsGuest { get; init; }
    public long IsAdmin { get; init; }
    public string? UserType { get; init; }
    public long Deactivated { get; init; }
    public long Erased { get; init; }
    public long Locked { get; init; }
    public long Suspended { get; init; }
    public long ShadowBanned { get; init; }
    public long CreatedTs { get; init; }
    /// <summary>The profile field as stored: JSON text.</summary>
    public string? DisplaynameJson { get; init; }
    public string? AvatarUrlJson { get; init; }
    public long? LastSeenTs { get; init; }
}

/// <summary>Which accounts <c>GET /_synapse/admin/v2/users</c> lists, and in which order.</summary>
public sealed record AdminUserFilter(
    string? UserIdContains, string? NameContains, bool Guests, bool? Deactivated, bool? Admins, bool Locked, IReadOnlyList<string> NotUserTypes,
    string OrderBy, bool Backwards);

/// <summary>The SQL of the admin user list: filters, Synapse's sort orders and offset pagination over every local account.</summary>
public sealed class AdminUserStore
{
    /// <summary>Sort keys of Synapse's <c>order_by</c>, as columns of <see cref="Accounts"/>.</summary>
    public static readonly IReadOnlyDictionary<string, string> SortColumns = new Dictionary<string, string>
    {
        ["name"] = "user_id", ["is_guest"] = "is_guest", ["admin"] = "is_admin", ["user_type"] = "user_type",
        ["deactivated"] = "deactivated", ["shadow_banned"] = "shadow_banned", ["displayname"] = "displayname_json",
        ["avatar_url"] = "avatar_url_json", ["creation_ts"] = "created_ts", ["last_seen_ts"] = "last_seen_ts", ["locked"] = "locked",
    };

    /// <summary>Accounts with their profile and last sighting, as one derived table the filters and sort orders apply to.</summary>
    private const string Accounts = """
        (SELECT u.user_id, u.is_guest, u.is_admin, u.user_type, u.deactivated, u.erased, u.locked, u.suspended, u.created_ts,
                u.shadow_banned, dn.value_json AS displayname_json, av.value_json AS avatar_url_json,
                (SELECT MAX(d.last_seen_ts) FROM devices d WHERE d.user_id = u.user_id) AS last_seen_ts
         FROM users u
         LEFT JOIN profile_fields dn ON dn.user_id = u.user_id AND dn.field = 'displayname'
         LEFT JOIN profile_fields av ON av.user_id = u.user_id AND av.field = 'avatar_url') AS accounts
        """;

    public Task<AdminUserRow?> GetAsync(DbSession s, string userId) =>
        s.QuerySingleOrDefaultAsync<AdminUserRow>($"SELECT * FROM {Accounts} WHERE user_id = @userId", new { userId });

    public async Task<(IReadOnlyList<AdminUserRow> Rows, long Total)> ListAsync(DbSession s, AdminUserFilter filter, int from, int limit)
    {
        var args = new SqlArgs();
        var where = Where(filter, args);
        var total = await s.ExecuteScalarAsync<long>($"SELECT COUNT(*) FROM {Accounts} {where}", args);
        var column = SortColumns[filter.OrderBy];
        var direction = filter.Backwards ? "DESC" : "ASC";
        // NULLs after values going forwards on both engines (PostgreSQL's own order; SQLite's is the reverse).
        var order = $"CASE WHEN {column} IS NULL THEN 1 ELSE 0 END {direction}, {column} {direction}, user_id ASC";
        args.Add("limit", (long)limit);
        args.Add("offset", (long)from);
        var rows = await s.QueryAsync<AdminUserRow>($"SELECT * FROM {Accounts} {where} ORDER BY {order} LIMIT @limit OFFSET @offset", args);
        return (rows.ToList(), total);
    }

    private static string Where(AdminUserFilter filter, SqlArgs args)
    {
        var conditions = new List<string>();
        if (filter.NameContains is { Length: > 0 } name)
        {
            conditions.Add(@"(user_id LIKE @localpartPattern ESCAPE '\' OR LOWER(displayname_json) LIKE @namePattern ESCAPE '\')");
            args.Add("localpartPattern", $"@%{EscapeLike(name.ToLowerInvariant())}%:%");
            args.Add("namePattern", $"%{EscapeLike(name.ToLowerInvariant())}%");
        }
        else if (filter.UserIdContains is { Length: > 0 } userId)
        {
            conditions.Add(@"user_id LIKE @userIdPattern ESCAPE '\'");
            args.Add("userIdPattern", $"%{EscapeLike(userId.ToLowerInvariant())}%");
        }
        if (!filter.Guests)
            conditions.Add("is_guest = 0");
        if (filter.Deactivated is { } deactivated)
            conditions.Add(deactivated ? "deactivated = 1" : "deactivated = 0");
        if (filter.Admins is { } admins)
            conditions.Add(admins ? "is_admin = 1" : "is_admin = 0");
        if (!filter.Locked)
            conditions.Add("locked = 0");
        for (var i = 0; i < filter.NotUserTypes.Count; i++)
        {
            if (filter.NotUserTypes[i].Length == 0)
                conditions.Add("user_type IS NOT NULL");
            else
            {
                conditions.Add($"(user_type IS NULL OR user_type <> @notUserType{i})");
                args.Add($"notUserType{i}", filter.NotUserTypes[i]);
            }
        }
        return conditions.Count == 0 ? "" : "WHERE " + string.Join(" AND ", conditions);
    }

    public static string EscapeLike(string text) => text.Replace(@"\", @"\\").Replace("%", @"\%").Replace("_", @"\_");
}
