using Matrix.Homeserver.Config;

namespace Matrix.Homeserver.Email;

/// <summary>Why an address is being validated; each has its own mail and its sessions serve only that purpose.</summary>
public enum ValidationPurpose
{
    Registration,
    AddThreepid,
    PasswordReset,
}

/// <summary>
/// The mails that carry a validation link: built in, or from <c>email.template_dir</c> (first line the subject, the rest
/// the body; <c>{link}</c>, <c>{app_name}</c> and <c>{server_name}</c> are filled in).
/// </summary>
public sealed class ValidationMails(HomeserverConfig config)
{
    public (string Subject, string Text) Compose(ValidationPurpose purpose, string link)
    {
        var template = Template(purpose);
        var newline = template.IndexOf('\n');
        var subject = (newline < 0 ? template : template[..newline]).Trim();
        var body = newline < 0 ? "" : template[(newline + 1)..];
        string Fill(string s) => s.Replace("{app_name}", config.Email.AppName).Replace("{server_name}", config.ServerName).Replace("{link}", link);
        return (Fill(subject), Fill(body));
    }

    private string Template(ValidationPurpose purpose)
    {
        var name = purpose switch
        {
            ValidationPurpose.Registration => "registration.txt",
            ValidationPurpose.AddThreepid => "add_threepid.txt",
            _ => "password_reset.txt",
        };
        if (config.Email.TemplateDir is { } dir && File.Exists(Path.Combine(dir, name)))
            return File.ReadAllText(Path.Combine(dir, name));
        return purpose switch
        {
            ValidationPurpose.Registration => """
                [{app_name}] Validate your email
                You asked to register an account on {server_name} with this email address.

                To continue, open this link:

                {link}

                If this was not you, ignore this mail.
                """,
            ValidationPurpose.AddThreepid => """
                [{app_name}] Validate your email
                You asked to add this email address to your account on {server_name}.

                To confirm, open this link:

                {link}

                If this was not you, ignore this mail.
                """,
            _ => """
                [{app_name}] Password reset
                A password reset was requested for your account on {server_name}.

                To reset your password, open this link:

                {link}

                If this was not you, ignore this mail: your password stays as it is.
                """,
        };
    }
}
