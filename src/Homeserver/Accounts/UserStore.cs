using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts;

public sealed class UserRow
{
    public string UserId { get; init; } = "";
    public string? PasswordHash { get; init; }
    public long IsAdmin { get; init; }
    public long Deactivated { get; init; }
    public long CreatedTs { get; init; }
    /// <summary>Locked by an administrator: every request but logout is refused (reversible).</summary>
    public long Locked { get; init; }
    /// <summary>Suspended by an administrator: the account reads but may not act in rooms or change its profile (reversible).</summary>
    public long Suspended { get; init; }
    /// <summary>A guest account (spec: Guest Access), until it is upgraded by registering with its guest access token.</summary>
    public long IsGuest { get; init; }
    /// <summary>Synapse's user type (<c>bot</c>, <c>support</c>), or null for a normal user.</summary>
    public string? UserType { get; init; }
    /// <summary>Deactivated with <c>erase</c> (GDPR erasure), as the admin API reports it.</summary>
    public long Erased { get; init; }
    /// <summary>Shadow-banned by an admin: their messages, state, invites and typing seem to succeed and reach nobody.</summary>
    public long ShadowBanned { get; init; }
    /// <summary>The user's own request rate (Synapse's override_ratelimit <c>messages_per_second</c>), or null for the server's.</summary>
    public long? RatelimitPerSecond { get; init; }
    public long? RatelimitBurst { get; init; }

    /// <summary>The request rate limit of this user: the admin's override (none when either number is 0, as Synapse), else the server's.</summary>
    public Config.RateLimitConfig? RequestLimit(Config.RateLimitConfig serverLimit) => (RatelimitPerSecond, RatelimitBurst ?? 0) switch
    {
        (null, _) => serverLimit,
        (0, _) or (_, 0) => null,
        var (perSecond, burst) => new Config.RateLimitConfig { PerSecond = perSecond.Value, Burst = burst },
    };
}

public sealed class UserStore(AccessTokenCache tokens)
{
    public Task<UserRow?> GetAsync(DbSession s, string userId) =>
        s.QuerySingleOrDefaultAsync<UserRow>("SELECT * FROM users WHERE user_id = @userId", new { userId });

    /// <summary>Inserts a user; false when the user ID is taken.</summary>
    public async Task<bool> InsertAsync(DbSession s, string userId, string? passwordHash, bool isAdmin, long now, bool isGuest = false) =>
        await s.ExecuteAsync("""
            INSERT INTO users (user_id, password_hash, is_admin, deactivated, created_ts, is_guest)
            VALUES (@userId, @passwordHash, @isAdmin, 0, @now, @isGuest) ON CONFLICT (user_id) DO NOTHING
            """, new { userId, passwordHash, isAdmin = isAdmin ? 1L : 0L, now, isGuest = isGuest ? 1L : 0L }) == 1;

    /// <summary>Makes a guest a full account with its password; false when the user is not (or no longer) a guest.</summary>
    public async Task<bool> UpgradeGuestAsync(DbSession s, string userId, string? passwordHash) =>
        await UpdateAsync(s, "UPDATE users SET is_guest = 0, password_hash = @passwordHash WHERE user_id = @userId AND is_guest = 1",
            new { userId, passwordHash }) == 1;

    /// <summary>Which of <paramref name="userIds"/> are guests.</summary>
    public async Task<IReadOnlyList<string>> GuestsAmongAsync(DbSession s, IReadOnlyCollection<string> userIds)
    {
        if (userIds.Count == 0)
            return [];
        var args = new SqlArgs();
        return (await s.QueryAsync<string>($"SELECT user_id FROM users WHERE is_guest = 1 AND user_id IN {SqlList.In(args, "u", userIds)}", args)).ToList();
    }

    public Task SetPasswordHashAsync(DbSession s, string userId, string? passwordHash) =>
        UpdateAsync(s, "UPDATE users SET password_hash = @passwordHash WHERE user_id = @userId", new { userId, passwordHash });

    public Task SetLockedAsync(DbSession s, string userId, bool locked) =>
        UpdateAsync(s, "UPDATE users SET locked = @locked WHERE user_id = @userId", new { userId, locked = locked ? 1L : 0L });

    public Task SetSuspendedAsync(DbSession s, string userId, bool suspended) =>
        UpdateAsync(s, "UPDATE users SET suspended = @suspended WHERE user_id = @userId", new { userId, suspended = suspended ? 1L : 0L });

    public Task SetAdminAsync(DbSession s, string userId, bool isAdmin) =>
        UpdateAsync(s, "UPDATE users SET is_admin = @isAdmin WHERE user_id = @userId", new { userId, isAdmin = isAdmin ? 1L : 0L });

    public Task SetUserTypeAsync(DbSession s, string userId, string? userType) =>
        UpdateAsync(s, "UPDATE users SET user_type = @userType WHERE user_id = @userId", new { userId, userType });

    public Task SetErasedAsync(DbSession s, string userId) =>
        UpdateAsync(s, "UPDATE users SET erased = 1 WHERE user_id = @userId", new { userId });

    public Task SetShadowBannedAsync(DbSession s, string userId, bool banned) =>
        UpdateAsync(s, "UPDATE users SET shadow_banned = @banned WHERE user_id = @userId", new { userId, banned = banned ? 1L : 0L });

    /// <summary>Sets (or with nulls removes) the user's own rate limit.</summary>
    public Task SetRateLimitAsync(DbSession s, string userId, long? perSecond, long? burst) =>
        UpdateAsync(s, "UPDATE users SET ratelimit_per_second = @perSecond, ratelimit_burst = @burst WHERE user_id = @userId", new { userId, perSecond, burst });

    /// <summary>Undoes a deactivation (an administrator's); the account has no password until one is set.</summary>
    public Task ReactivateAsync(DbSession s, string userId) =>
        UpdateAsync(s, "UPDATE users SET deactivated = 0, erased = 0 WHERE user_id = @userId", new { userId });

    public Task DeactivateAsync(DbSession s, string userId) =>
        UpdateAsync(s, "UPDATE users SET deactivated = 1, password_hash = NULL WHERE user_id = @userId", new { userId });

    /// <summary>A change to a user's row: the access tokens cached with the old row are stale from here on.</summary>
    private Task<int> UpdateAsync(DbSession s, string sql, object args)
    {
        tokens.Invalidate(s);
        return s.ExecuteAsync(sql, args);
    }
}
