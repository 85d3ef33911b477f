#if NET8_0_OR_GREATER
using System.Runtime.CompilerServices;

// The cmdlet assembly is compiled once, against the netstandard2.0 builds of our libraries, where `init` setters
// carry a modreq of the IsExternalInit that PolySharp compiles into each library. On PowerShell 7 those calls bind
// to the net8.0 builds; forwarding the name to the runtime's own IsExternalInit makes both signatures the same.
[assembly: TypeForwardedTo(typeof(IsExternalInit))]
#endif
