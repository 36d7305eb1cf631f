using Matrix.Federation.Rooms;
using System.Text.Json.Nodes;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Discovery;

/// <summary>Spec: Server discovery (<c>/.well-known/matrix/*</c>), API versions and capabilities.</summary>
public sealed class DiscoveryEndpoints(Authenticator authenticator, Accounts.PasswordLogin passwords, HomeserverConfig config) : IEndpoints
{
    // The spec versions whose client-server changes to the modules this server implements it follows.
    private static readonly string[] SupportedVersions =
        ["r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11", "v1.12", "v1.13", "v1.14",
         "v1.15", "v1.16", "v1.17", "v1.18", "v1.19"];

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/_matrix/client/versions", VersionsAsync);
        app.MapGet("/.well-known/matrix/client", WellKnownClientAsync);
        app.MapGet("/.well-known/matrix/server", WellKnownServerAsync);
        app.MapGet("/.well-known/matrix/support", WellKnownSupportAsync);
        app.MapV3("GET", "capabilities", CapabilitiesAsync);
    }

    private Task VersionsAsync(HttpContext context) => context.WriteJsonAsync(new JsonObject
    {
        ["versions"] = new JsonArray(SupportedVersions.Select(v => (JsonNode)JsonValue.Create(v)).ToArray()),
        ["unstable_features"] = UnstableFeatures(),
    });

    /// <summary>
    /// The flags Synapse advertises, for the features this server serves. Clients still read some of them although
    /// the features are stable: Element Web 1.11.88 bootstraps cross-signing at registration only when
    /// <c>org.matrix.e2e_cross_signing</c> is true.
    /// </summary>
    private JsonObject UnstableFeatures() => new()
    {
        ["org.matrix.e2e_cross_signing"] = true,
        ["org.matrix.msc2432"] = true,
        ["uk.half-shot.msc2666.query_mutual_rooms.stable"] = true,
        ["org.matrix.msc2285.stable"] = true,
        ["org.matrix.msc3440.stable"] = true,
        ["org.matrix.msc3771"] = true,
        ["org.matrix.msc3981"] = true,
        ["fi.mau.msc2659.stable"] = true,
        ["uk.tcpip.msc4133.stable"] = true,
        [Sync.SlidingSync.SlidingSyncEndpoints.UnstableFeature] = true,
        ["org.matrix.msc3882"] = config.Auth.LoginViaExistingSession,
        ["io.element.e2ee_forced.public"] = false,
        ["io.element.e2ee_forced.private"] = false,
        ["io.element.e2ee_forced.trusted_private"] = false,
    };

    private Task WellKnownClientAsync(HttpContext context)
    {
        var body = new JsonObject
        {
            ["m.homeserver"] = new JsonObject { ["base_url"] = config.WellKnown.ClientBaseUrl ?? config.EffectivePublicBaseurl },
        };
        if (config.WellKnown.IdentityServerBaseUrl is { } identityServer)
            body["m.identity_server"] = new JsonObject { ["base_url"] = identityServer };
        return context.WriteJsonAsync(body);
    }

    private Task WellKnownServerAsync(HttpContext context) => config.WellKnown.Server is { } server
        ? context.WriteJsonAsync(new JsonObject { ["m.server"] = server })
        : throw MatrixException.NotFound("No server delegation is configured.");

    private Task WellKnownSupportAsync(HttpContext context)
    {
        var wellKnown = config.WellKnown;
        if (wellKnown.SupportContacts.Count == 0 && wellKnown.SupportPage is null)
            throw MatrixException.NotFound("No support contacts are configured.");
        var body = new JsonObject();
        if (wellKnown.SupportContacts.Count > 0)
            body["contacts"] = new JsonArray(wellKnown.SupportContacts.Select(c =>
            {
                var contact = new JsonObject { ["role"] = c.Role };
                if (c.MatrixId is not null)
                    contact["matrix_id"] = c.MatrixId;
                if (c.EmailAddress is not null)
                    contact["email_address"] = c.EmailAddress;
                return (JsonNode)contact;
            }).ToArray());
        if (wellKnown.SupportPage is not null)
            body["support_page"] = wellKnown.SupportPage;
        return context.WriteJsonAsync(body);
    }

    private async Task CapabilitiesAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var directoryAccount = await passwords.IsDirectoryAccountAsync(requester.UserId.Value, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject
        {
            ["capabilities"] = new JsonObject
            {
                ["m.change_password"] = Enabled(!directoryAccount),
                ["m.set_displayname"] = Enabled(true),
                ["m.set_avatar_url"] = Enabled(true),
                ["m.3pid_changes"] = Enabled(config.Email.Enabled),
                ["m.get_login_token"] = Enabled(config.Auth.LoginViaExistingSession),
                ["m.profile_fields"] = Enabled(true),
                ["m.room_versions"] = new JsonObject
                {
                    ["default"] = config.EffectiveDefaultRoomVersion.Id,
                    ["available"] = new JsonObject(RoomVersions.All.Select(v =>
                        KeyValuePair.Create(v.Id, (JsonNode?)(v.Stable ? "stable" : "unstable")))),
                },
            },
        });
    }

    private static JsonObject Enabled(bool enabled) => new() { ["enabled"] = enabled };
}
