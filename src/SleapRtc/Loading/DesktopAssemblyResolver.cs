using System.Reflection;
using System.Runtime.InteropServices;

namespace SleapRtc.PowerShell.Loading;

/// <summary>
/// Windows PowerShell 5.1 has one load context per AppDomain and no binding redirects for modules, so the
/// netstandard2.0 builds of our libraries and their dependencies (System.Memory, System.Text.Json, BouncyCastle,
/// SQLite...) are found by an AssemblyResolve handler over a private folder. It answers by simple name, which also
/// bridges the version skew between those packages that an application would fix with binding redirects.
/// </summary>
internal static class DesktopAssemblyResolver
{
    private static string[] s_directories = Array.Empty<string>();

    /// <param name="directory">bin/desktop; its parent (bin) holds the public model assembly the libraries also reference.</param>
    public static void Install(string directory)
    {
        if (!Directory.Exists(directory)) return;
        s_directories = new[] { directory, Path.GetDirectoryName(directory)! };
        AppDomain.CurrentDomain.AssemblyResolve += Resolve;
        PreloadNativeSqlite(directory);
    }

    private static Assembly? Resolve(object? sender, ResolveEventArgs args)
    {
        var name = new AssemblyName(args.Name).Name;
        if (string.IsNullOrEmpty(name)) return null;
        var path = s_directories.Select(directory => Path.Combine(directory, name + ".dll")).FirstOrDefault(File.Exists);
        if (path is null) return null;
        // An assembly of that name may already be loaded from our folder under another requested version.
        foreach (var loaded in AppDomain.CurrentDomain.GetAssemblies())
        {
            if (!loaded.IsDynamic && string.Equals(loaded.GetName().Name, name, StringComparison.OrdinalIgnoreCase)
                && string.Equals(SafeLocation(loaded), path, StringComparison.OrdinalIgnoreCase))
                return loaded;
        }
        return Assembly.LoadFrom(path);
    }

    private static string SafeLocation(Assembly assembly)
    {
        try { return assembly.Location; }
        catch (NotSupportedException) { return ""; }
    }

    /// <summary>
    /// SQLite's provider imports "e_sqlite3" by name, and .NET Framework looks for it beside powershell.exe and on
    /// PATH only. Loading our copy first makes Windows hand that module to the import.
    /// </summary>
    private static void PreloadNativeSqlite(string directory)
    {
        if (Environment.OSVersion.Platform != PlatformID.Win32NT) return;
        var arch = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X86 => "win-x86",
            Architecture.Arm64 => "win-arm64",
            _ => "win-x64",
        };
        var native = Path.Combine(directory, "runtimes", arch, "native", "e_sqlite3.dll");
        if (File.Exists(native)) LoadLibraryW(native);
    }

    [DllImport("kernel32", CharSet = CharSet.Unicode, SetLastError = true)]
    private static extern IntPtr LoadLibraryW(string path);
}
