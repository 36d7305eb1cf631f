using System.Text.Json.Nodes;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Accounts;

/// <summary>Spec: Account management (<c>/account/password</c>, <c>/account/deactivate</c>).</summary>
public sealed class AccountManagementEndpoints(
    AccountService accounts, PasswordLogin passwords, Authenticator authenticator, UserInteractiveAuth uia, JsonBody json) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("POST", "account/password", ChangePasswordAsync);
        app.MapV3("POST", "account/deactivate", DeactivateAsync);
    }

    private async Task ChangePasswordAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var body = await json.ReadObjectAsync(context);
        if (await passwords.IsDirectoryAccountAsync(requester.UserId.Value, context.RequestAborted))
            throw MatrixException.Forbidden("This account's password is managed by the directory; change it there.");
        var newPassword = body.RequiredString("new_password");
        AccountService.ValidatePassword(newPassword);
        var logoutDevices = body.OptionalBool("logout_devices") ?? true;
        var authorisation = await uia.ReauthenticateAsync(context, body, requester);
        await accounts.ChangePasswordAsync(requester, newPassword, logoutDevices, s => uia.FinishAsync(s, authorisation), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task DeactivateAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var body = await json.ReadObjectAsync(context);
        body.OptionalBool("erase");
        body.OptionalString("id_server");
        // An application service deactivates its users without interactive auth (as Synapse lets it).
        if (requester.AppService is not null)
            await accounts.DeactivateAsync(requester.UserId.Value, alsoInTransaction: null, context.RequestAborted);
        else
        {
            var authorisation = await uia.ReauthenticateAsync(context, body, requester);
            await accounts.DeactivateAsync(requester.UserId.Value, s => uia.FinishAsync(s, authorisation), context.RequestAborted);
        }
        await context.WriteJsonAsync(new JsonObject { ["id_server_unbind_result"] = "no-support" });
    }
}
