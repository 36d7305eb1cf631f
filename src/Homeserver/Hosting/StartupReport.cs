using Matrix.Homeserver.ApplicationServices;
using Matrix.Homeserver.Config;

namespace Matrix.Homeserver.Hosting;

/// <summary>
/// What an operator checks first when a bridge or LDAP login seems to do nothing: logged once at start-up, like the
/// listening addresses, whatever the configured level.
/// </summary>
public static class StartupReport
{
    public const string Category = "Matrix.Homeserver.Startup";

    public static void Log(IServiceProvider services, HomeserverConfig config)
    {
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger(Category);
        var appServices = services.GetRequiredService<AppServiceRegistry>().All;
        logger.LogInformation("Application services loaded: {Count}{Services}", appServices.Count,
            string.Concat(appServices.Select(a => $"; {a.Id} (sender {a.SenderUserId})")));
        if (config.Ldap.Enabled)
            logger.LogInformation("LDAP login: on, directory {Uri}", config.Ldap.Uri);
        else
            logger.LogInformation("LDAP login: off");
    }
}
