using System.Text.Json.Nodes;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts;

/// <summary>
/// Third-party identifiers of accounts (spec: "Adding Account Administrative Contact Information"): those on the account
/// (validated by this server), and their bindings at identity servers, which this server records so it can undo them
/// on removal and deactivation, as Synapse does.
/// </summary>
public sealed class ThreepidService(Database db, ThreepidStore store, IdentityServerClient identity, TimeProvider clock, ILogger<ThreepidService> logger)
{
    private long Now => clock.GetUtcNow().ToUnixTimeMilliseconds();

    public async Task<JsonArray> ListAsync(string userId, CancellationToken ct)
    {
        var rows = await db.ReadAsync(s => store.ListForUserAsync(s, userId), ct);
        return new JsonArray(rows.Select(row => (JsonNode)new JsonObject
        {
            ["medium"] = row.Medium, ["address"] = row.Address, ["validated_at"] = row.ValidatedTs, ["added_at"] = row.AddedTs,
        }).ToArray());
    }

    public Task<string?> OwnerOfAsync(string medium, string address, CancellationToken ct) => db.ReadAsync(s => store.OwnerOfAsync(s, medium, address), ct);

    /// <summary>Attaches a proved address to an account, in the caller's transaction; 400 M_THREEPID_IN_USE when another account has it.</summary>
    public async Task AddAsync(DbSession s, string userId, string medium, string address, long validatedTs)
    {
        if (!await store.AddAsync(s, userId, medium, address, validatedTs, Now))
            throw InUse();
        logger.LogInformation("Added a {Medium} address to {UserId}", medium, userId);
    }

    /// <summary>Attaches a proved address to an account in a transaction of its own, with <paramref name="alsoInTransaction"/>.</summary>
    public Task AddInTransactionAsync(string userId, Email.ValidatedThreepid proved, Func<DbSession, Task> alsoInTransaction, CancellationToken ct) =>
        db.WriteAsync(async s =>
        {
            await AddAsync(s, userId, proved.Medium, proved.Address, proved.ValidatedTs);
            await alsoInTransaction(s);
        }, ct);

    public static MatrixException InUse() => new(400, "M_THREEPID_IN_USE", "This address is already in use by another account.");

    /// <summary>Binds at the identity server the 3PID its session validated, and records where it is bound.</summary>
    public async Task BindAsync(string userId, string idServer, string idAccessToken, string sid, string clientSecret, CancellationToken ct)
    {
        var (medium, address) = await identity.BindAsync(idServer, idAccessToken, sid, clientSecret, userId, ct);
        await db.WriteAsync(s => store.AddBindingAsync(s, userId, medium, address, idServer), ct);
    }

    /// <summary>
    /// Unbinds a 3PID at <paramref name="idServer"/>, or else at every identity server this server bound it at; "success"
    /// when all of them forgot it, "no-support" when there was none to ask or one could not.
    /// </summary>
    public async Task<string> UnbindAsync(string userId, string medium, string address, string? idServer, CancellationToken ct)
    {
        var servers = idServer is not null ? [idServer] : await db.ReadAsync(s => store.BindingServersAsync(s, userId, medium, address), ct);
        var allForgot = servers.Count > 0;
        foreach (var server in servers)
        {
            allForgot &= await identity.UnbindAsync(server, userId, medium, address, ct);
            await db.WriteAsync(s => store.RemoveBindingAsync(s, userId, medium, address, server), ct);
        }
        return allForgot ? "success" : "no-support";
    }

    /// <summary>Removes a 3PID from the account and unbinds it (spec: <c>/account/3pid/delete</c>).</summary>
    public async Task<string> DeleteAsync(string userId, string medium, string address, string? idServer, CancellationToken ct)
    {
        var result = await UnbindAsync(userId, medium, address, idServer, ct);
        await db.WriteAsync(s => store.RemoveAsync(s, userId, medium, address), ct);
        return result;
    }

    /// <summary>Before deactivation: unbinds every 3PID this server bound for the account.</summary>
    public async Task<string> UnbindAllAsync(string userId, string? idServer, CancellationToken ct)
    {
        var bindings = await db.ReadAsync(s => store.AllBindingsAsync(s, userId), ct);
        var result = "success";
        foreach (var (medium, address) in bindings.Select(b => (b.Medium, b.Address)).Distinct())
            if (await UnbindAsync(userId, medium, address, idServer, ct) != "success")
                result = "no-support";
        return result;
    }
}
