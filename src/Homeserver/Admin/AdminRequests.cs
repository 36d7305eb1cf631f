using Matrix.Federation.Identifiers;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>What every endpoint of Synapse's admin API (<c>/_synapse/admin</c>) checks first: a server admin asks, about a local user.</summary>
public sealed class AdminAuth(Authenticator authenticator, Database db, UserStore users, HomeserverConfig config)
{
    public const string Prefix = "/_synapse/admin";

    public async Task<Requester> RequireAdminAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        return requester.IsAdmin ? requester : throw NotAdmin();
    }

    /// <summary>
    /// A server admin, or an application service reactivating an existing user of its namespaces: it may act as that
    /// user anyway, and a directory bridge must bring back the people who return (nothing else is allowed to it).
    /// </summary>
    public async Task<Requester> RequireAdminOrReactivatingAppServiceAsync(HttpContext context, Func<Task<AdminUserChanges>> readChanges)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        if (requester.IsAdmin)
            return requester;
        if (requester.AppService is not { } appService || (await readChanges()) != AdminUserChanges.ReactivationOnly
            || !appService.IsInterestedInUser(LocalUserId(context).Value))
            throw NotAdmin();
        await ExistingLocalUserAsync(context);
        return requester;
    }

    private static MatrixException NotAdmin() => MatrixException.Forbidden("You are not a server admin.");

    /// <summary>The <c>{userId}</c> route value: a valid user ID of this server, else 400.</summary>
    public UserId LocalUserId(HttpContext context)
    {
        if (!UserId.TryParse(context.Route("userId"), out var userId))
            throw MatrixException.InvalidParam("Invalid user ID.");
        return userId.Server.Value == config.ServerName ? userId : throw MatrixException.InvalidParam("Can only look up local users.");
    }

    /// <summary>The account of the <c>{userId}</c> route value, which must exist on this server (else 404).</summary>
    public async Task<UserRow> ExistingLocalUserAsync(HttpContext context)
    {
        var userId = LocalUserId(context);
        return await db.ReadAsync(s => users.GetAsync(s, userId.Value), context.RequestAborted) ?? throw MatrixException.NotFound("User not found.");
    }
}

/// <summary>Synapse's query parameters of the admin API, with its 400 answers for bad values.</summary>
public static class AdminQuery
{
    public static int NonNegativeInteger(HttpContext context, string name, int fallback) =>
        (int)Math.Min(NonNegativeLong(context, name, fallback), int.MaxValue);

    public static long NonNegativeLong(HttpContext context, string name, long fallback)
    {
        var text = context.Query(name);
        if (text.Length == 0)
            return fallback;
        if (!long.TryParse(text, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var value))
            throw MatrixException.InvalidParam($"Query parameter {name} must be an integer.");
        return value >= 0 ? value : throw MatrixException.InvalidParam($"Query parameter {name} must be a positive integer.");
    }

    /// <summary><c>from</c> and <c>limit</c> (default 100) of an offset-paginated list.</summary>
    public static (int From, int Limit) Page(HttpContext context) =>
        (NonNegativeInteger(context, "from", 0), NonNegativeInteger(context, "limit", 100));

    /// <summary>A <c>true</c>/<c>false</c> parameter; null when absent.</summary>
    public static bool? Boolean(HttpContext context, string name) => context.Query(name) switch
    {
        "" => null,
        "true" => true,
        "false" => false,
        _ => throw MatrixException.InvalidParam($"Boolean query parameter '{name}' must be one of ['true', 'false']."),
    };

    public static string OneOf(HttpContext context, string name, string fallback, IReadOnlyCollection<string> allowed)
    {
        var value = context.Query(name);
        if (value.Length == 0)
            return fallback;
        return allowed.Contains(value) ? value : throw MatrixException.InvalidParam($"Query parameter '{name}' must be one of [{string.Join(", ", allowed)}].");
    }

    /// <summary><c>dir</c>: true for <c>b</c> (backwards), false for <c>f</c> (the default).</summary>
    public static bool Backwards(HttpContext context) => OneOf(context, "dir", "f", ["f", "b"]) == "b";
}
