using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Matrix.Federation.Identifiers;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Profile;

/// <summary>Profiles of local users (spec: Profiles, with the custom fields of v1.16).</summary>
public sealed partial class ProfileService(Database db, ProfileStore store, UserStore users, Rooms.MembershipService memberships,
    ApplicationServices.AppServiceQueries appServices)
{
    public const int MaxProfileBytes = 64 * 1024;
    public const int MaxKeyBytes = 255;
    public const int MaxDisplayNameLength = 256;

    [GeneratedRegex(@"^(avatar_url|displayname|m\.tz|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+)$")]
    private static partial Regex KeyNamePattern();

    /// <summary>All fields of a local user's profile; 404 when the user does not exist.</summary>
    public async Task<IReadOnlyList<ProfileFieldRow>> GetProfileAsync(UserId userId, CancellationToken ct)
    {
        var (user, fields) = await db.ReadAsync(async s => (await users.GetAsync(s, userId.Value), await store.GetAllAsync(s, userId.Value)), ct);
        if (user is not null)
            return fields.ToList();
        // A user of an application service's namespace may come into being when the service is asked about it.
        if (!await appServices.AskForUserAsync(userId.Value, ct))
            throw MatrixException.NotFound("Profile was not found.");
        return (await db.ReadAsync(s => store.GetAllAsync(s, userId.Value), ct)).ToList();
    }

    public async Task<string> GetFieldAsync(UserId userId, string key, CancellationToken ct)
    {
        ValidateKey(key);
        return await db.ReadAsync(s => store.GetAsync(s, userId.Value, key), ct)
            ?? throw MatrixException.NotFound("Profile field was not found.");
    }

    public async Task SetFieldAsync(Requester requester, UserId userId, string key, JsonElement value, CancellationToken ct)
    {
        Authorise(requester, userId);
        ValidateKey(key);
        switch (key)
        {
            case "displayname" when value.ValueKind != JsonValueKind.String:
                throw MatrixException.BadJson("displayname must be a string.");
            case "displayname" when value.GetString()!.Length > MaxDisplayNameLength:
                throw MatrixException.InvalidParam($"displayname may not be longer than {MaxDisplayNameLength} characters.");
            case "avatar_url" when value.ValueKind != JsonValueKind.String:
                throw MatrixException.BadJson("avatar_url must be a string.");
            case "avatar_url" when value.GetString() is { Length: > 0 } url && !url.StartsWith("mxc://", StringComparison.Ordinal):
                throw MatrixException.InvalidParam("avatar_url must be an mxc:// URI.");
            case "m.tz" when value.ValueKind != JsonValueKind.String:
                throw MatrixException.BadJson("m.tz must be a string.");
        }
        var valueJson = value.GetRawText();
        await db.WriteAsync(async s =>
        {
            var others = (await store.GetAllAsync(s, userId.Value)).Where(f => f.Field != key);
            var size = Encoding.UTF8.GetByteCount(valueJson) + Encoding.UTF8.GetByteCount(key)
                + others.Sum(f => Encoding.UTF8.GetByteCount(f.Field) + Encoding.UTF8.GetByteCount(f.ValueJson));
            if (size > MaxProfileBytes)
                throw new MatrixException(400, "M_PROFILE_TOO_LARGE", "The profile would exceed 64 KiB.");
            await store.SetAsync(s, userId.Value, key, valueJson);
        }, ct);
        if (key is "displayname" or "avatar_url")
            await memberships.RefreshProfileAsync(userId.Value, ct);
    }

    public async Task DeleteFieldAsync(Requester requester, UserId userId, string key, CancellationToken ct)
    {
        Authorise(requester, userId);
        ValidateKey(key);
        await db.WriteAsync(s => store.DeleteAsync(s, userId.Value, key), ct);
        if (key is "displayname" or "avatar_url")
            await memberships.RefreshProfileAsync(userId.Value, ct);
    }

    private static void Authorise(Requester requester, UserId userId)
    {
        if (requester.UserId != userId && !requester.IsAdmin)
            throw MatrixException.Forbidden("You may only change your own profile.");
    }

    private static void ValidateKey(string key)
    {
        if (Encoding.UTF8.GetByteCount(key) > MaxKeyBytes)
            throw new MatrixException(400, "M_KEY_TOO_LARGE", $"Profile keys may not be longer than {MaxKeyBytes} bytes.");
        if (!KeyNamePattern().IsMatch(key))
            throw MatrixException.InvalidParam("Invalid profile key.");
    }
}
