using System.Text.Json.Nodes;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Accounts;

/// <summary>Spec: Account management (<c>/account/password</c>, including password reset by email, and <c>/account/deactivate</c>).</summary>
public sealed class AccountManagementEndpoints(
    AccountService accounts, AccountDeactivation deactivation, PasswordLogin passwords, Authenticator authenticator, UserInteractiveAuth uia,
    ThreepidService threepids, JsonBody json, HomeserverConfig config) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("POST", "account/password", ChangePasswordAsync);
        app.MapV3("POST", "account/deactivate", DeactivateAsync);
    }

    private async Task ChangePasswordAsync(HttpContext context)
    {
        // Without an access token this is a password reset, proved by an email address on the account (as Synapse).
        var requester = config.Email.Enabled && Authenticator.ExtractToken(context.Request) is null
            ? null
            : await authenticator.AuthenticateAsync(context);
        var body = await json.ReadObjectAsync(context);
        var newPassword = body.RequiredString("new_password");
        AccountService.ValidatePassword(newPassword);
        var logoutDevices = body.OptionalBool("logout_devices") ?? true;
        string userId;
        UiaResult authorisation;
        if (requester is null)
        {
            authorisation = await uia.AuthenticateAsync(context, body, [[AuthTypes.EmailIdentity]], user: null, Email.ValidationPurpose.PasswordReset);
            var proved = authorisation.Threepid!;
            userId = await threepids.OwnerOfAsync(proved.Medium, proved.Address, context.RequestAborted)
                ?? throw new MatrixException(400, "M_THREEPID_NOT_FOUND", "No account has this email address.");
            await RefuseDirectoryAccountAsync(userId, context.RequestAborted);
        }
        else
        {
            userId = requester.UserId.Value;
            await RefuseDirectoryAccountAsync(userId, context.RequestAborted);
            authorisation = await uia.ReauthenticateAsync(context, body, requester);
        }
        await accounts.ChangePasswordAsync(userId, requester?.DeviceId, newPassword, logoutDevices, s => uia.FinishAsync(s, authorisation),
            context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task RefuseDirectoryAccountAsync(string userId, CancellationToken ct)
    {
        if (await passwords.IsDirectoryAccountAsync(userId, ct))
            throw MatrixException.Forbidden("This account's password is managed by the directory; change it there.");
    }

    private async Task DeactivateAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var body = await json.ReadObjectAsync(context);
        var erase = body.OptionalBool("erase") ?? false;
        var idServer = body.OptionalString("id_server");
        // An application service deactivates its users without interactive auth (as Synapse lets it).
        var authorisation = requester.AppService is null ? await uia.ReauthenticateAsync(context, body, requester) : null;
        var unbound = await deactivation.DeactivateAsync(requester.UserId.Value, erase, idServer,
            authorisation is null ? null : s => uia.FinishAsync(s, authorisation), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["id_server_unbind_result"] = unbound });
    }
}
