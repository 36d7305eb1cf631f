using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Admin;

/// <summary>
/// Synapse's shared-secret registration (<c>/_synapse/admin/v1/register</c>), so operators can create the first admin
/// with the tools they know (register_new_matrix_user). The MAC is HMAC-SHA1 over
/// nonce NUL username NUL password NUL ("admin"|"notadmin") [NUL user_type], keyed with the shared secret.
/// Not rate limited (as Synapse: an operator's script may create many accounts at once); a nonce is good once and for
/// a minute, and at most <see cref="MaxOutstandingNonces"/> wait, the oldest going first.
/// </summary>
public sealed class SharedSecretRegistration(AccountService accounts, JsonBody json, HomeserverConfig config, TimeProvider clock) : IEndpoints
{
    private const int MaxOutstandingNonces = 10_000;
    private static readonly TimeSpan NonceLifetime = TimeSpan.FromSeconds(60);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _nonces = new();

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/_synapse/admin/v1/register", NonceAsync);
        app.MapPost("/_synapse/admin/v1/register", RegisterAsync);
    }

    private byte[] SharedSecret => Encoding.UTF8.GetBytes(config.Registration.SharedSecret
        ?? throw new MatrixException(400, "M_UNKNOWN", "Shared secret registration is not enabled."));

    private Task NonceAsync(HttpContext context)
    {
        _ = SharedSecret;
        var now = clock.GetUtcNow();
        foreach (var (old, issued) in _nonces)
            if (now - issued > NonceLifetime)
                _nonces.TryRemove(old, out _);
        if (_nonces.Count >= MaxOutstandingNonces && _nonces.MinBy(n => n.Value) is { Key: { } oldest })
            _nonces.TryRemove(oldest, out _);
        var nonce = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        _nonces[nonce] = now;
        return context.WriteJsonAsync(new JsonObject { ["nonce"] = nonce });
    }

    private async Task RegisterAsync(HttpContext context)
    {
        var secret = SharedSecret;
        var body = await json.ReadObjectAsync(context);
        var nonce = body.RequiredString("nonce");
        if (!_nonces.TryRemove(nonce, out var issued) || clock.GetUtcNow() - issued > NonceLifetime)
            throw new MatrixException(400, "M_UNKNOWN", "Unrecognised nonce.");
        var username = body.RequiredString("username");
        var password = body.RequiredString("password");
        var admin = body.OptionalBool("admin") ?? false;
        var userType = body.OptionalString("user_type");
        var mac = body.RequiredString("mac");

        var message = string.Join('\0', new[] { nonce, username, password, admin ? "admin" : "notadmin" }
            .Concat(userType is null ? [] : [userType]));
        var expected = Encoding.ASCII.GetBytes(Convert.ToHexStringLower(HMACSHA1.HashData(secret, Encoding.UTF8.GetBytes(message))));
        if (!CryptographicOperations.FixedTimeEquals(expected, Encoding.ASCII.GetBytes(mac.ToLowerInvariant())))
            throw MatrixException.Forbidden("HMAC incorrect.");

        var userId = accounts.ValidateNewLocalpart(username);
        var session = await accounts.RegisterAsync(userId, password, admin, deviceId: null, deviceDisplayName: null,
            inhibitLogin: false, wantsRefreshToken: false, alsoInTransaction: null, context.RequestAborted);
        await context.WriteJsonAsync(session!.ToJson(config));
    }
}
