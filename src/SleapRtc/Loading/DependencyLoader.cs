using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace SleapRtc.PowerShell.Loading;

/// <summary>
/// Puts the module's private dependency loading in place the moment this assembly loads, before PowerShell or any
/// cmdlet touches a library type. PowerShell 7 (.NET): a private AssemblyLoadContext over bin/deps, which lives in
/// SleapRtc.Loader.dll because this netstandard2.0 assembly cannot name that type. Windows PowerShell 5.1 (.NET
/// Framework): an AssemblyResolve handler over bin/desktop.
/// </summary>
internal static class DependencyLoader
{
    private const string CoreLoaderAssembly = "SleapRtc.Loader.dll";
    private const string CoreLoaderType = "SleapRtc.Loader.PrivateLoadContext";
    private static int s_installed;

    /// <summary>.NET Framework (Windows PowerShell 5.1), or Mono, its API twin that our tests run the same path on.</summary>
    public static bool IsDotNetFramework { get; } =
        RuntimeInformation.FrameworkDescription.StartsWith(".NET Framework", StringComparison.OrdinalIgnoreCase)
        || RuntimeInformation.FrameworkDescription.StartsWith("Mono", StringComparison.OrdinalIgnoreCase);

    /// <summary>PowerShell 7.0–7.3 run on .NET Core 3.1–7, older than our net8.0 libraries; 5.1 takes the netstandard2.0 ones.</summary>
    public static bool IsSupportedRuntime => IsDotNetFramework || Environment.Version.Major >= 8;

    /// <summary>Called on Import-Module: refuses, with the reason, a host the libraries cannot run in.</summary>
    public static void EnsureSupportedRuntime()
    {
        if (!IsSupportedRuntime)
            throw new PlatformNotSupportedException(
                $"SleapRtc needs PowerShell 7.4 or later (on .NET 8+) or Windows PowerShell 5.1; this host runs {RuntimeInformation.FrameworkDescription}. Update PowerShell: https://aka.ms/powershell");
        Install();
    }

#pragma warning disable CA2255 // Deliberate: the resolver must exist before PowerShell reflects over the cmdlets.
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Install()
    {
        if (!IsSupportedRuntime || Interlocked.Exchange(ref s_installed, 1) != 0) return;
        var location = typeof(DependencyLoader).Assembly.Location;
        if (string.IsNullOrEmpty(location)) return;
        var binDirectory = Path.GetDirectoryName(location)!;

        if (IsDotNetFramework)
        {
            DesktopAssemblyResolver.Install(Path.Combine(binDirectory, "desktop"));
            return;
        }
        var loaderPath = Path.Combine(binDirectory, CoreLoaderAssembly);
        if (!File.Exists(loaderPath)) return; // not the laid-out module (e.g. a unit-test bin)
        var install = Assembly.LoadFrom(loaderPath).GetType(CoreLoaderType, throwOnError: true)!
            .GetMethod("Install", BindingFlags.Public | BindingFlags.Static, null, new[] { typeof(string) }, null)!;
        install.Invoke(null, new object[] { binDirectory });
    }
}
