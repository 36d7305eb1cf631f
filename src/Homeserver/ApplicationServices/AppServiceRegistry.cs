using Matrix.AppServices.Registration;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;

namespace Matrix.Homeserver.ApplicationServices;

/// <summary>
/// The application services of <c>app_service_config_files</c>, loaded once at start-up (the config loader has
/// already checked them), looked up by token and by the namespaces they claim.
/// </summary>
public sealed class AppServiceRegistry
{
    private readonly Dictionary<string, AppServiceRegistration> _byAsTokenHash;

    public AppServiceRegistry(HomeserverConfig config)
    {
        All = config.AppServiceConfigFiles.Select(path => RegistrationFile.Load(path, config.ServerName)).ToList();
        RegistrationFile.ValidateSet(All);
        _byAsTokenHash = All.ToDictionary(r => Secrets.Hash(r.AsToken), StringComparer.Ordinal);
    }

    public IReadOnlyList<AppServiceRegistration> All { get; }

    /// <summary>The service whose <c>as_token</c> this is (compared as SHA-256 hashes, like access tokens).</summary>
    public AppServiceRegistration? ByAsToken(string token) => _byAsTokenHash.GetValueOrDefault(Secrets.Hash(token));

    public AppServiceRegistration? ById(string id) => All.FirstOrDefault(r => r.Id == id);

    /// <summary>The service that claims the user ID exclusively, if any.</summary>
    public AppServiceRegistration? ExclusiveOwnerOfUser(string userId) => All.FirstOrDefault(r => r.ClaimsUserExclusively(userId));

    public AppServiceRegistration? ExclusiveOwnerOfAlias(string alias) => All.FirstOrDefault(r => r.ClaimsAliasExclusively(alias));

    /// <summary>400 <c>M_EXCLUSIVE</c> unless the user ID is free for <paramref name="actor"/> (null: an ordinary client) to take.</summary>
    public void CheckUserIdFree(string userId, AppServiceRegistration? actor)
    {
        if (actor is not null ? !actor.IsInterestedInUser(userId) : ExclusiveOwnerOfUser(userId) is not null)
            throw new Http.MatrixException(400, "M_EXCLUSIVE", actor is not null
                ? "This user ID is outside the application service's namespaces."
                : "This user ID is reserved by an application service.");
    }

    public void CheckAliasFree(string alias, AppServiceRegistration? actor)
    {
        if (actor is null ? ExclusiveOwnerOfAlias(alias) is not null : ExclusiveOwnerOfAlias(alias) is { } owner && owner != actor)
            throw new Http.MatrixException(400, "M_EXCLUSIVE", "This alias is reserved by an application service.");
    }
}
