package instance

// Account protection on and off, for BenchmarkSignInRisk only (no
// configuration switches the sign-in guard off: a deployment without
// rules or geo-IP still gets new-device alerts).

// ProtectionOff takes the sign-in guard and the known-device check off
// Auth: a sign-in is then what it was before account protection (the
// password, the throttle, the session). Call it between requests only.
func (in *Instance) ProtectionOff() {
	g := in.guards
	g.SignIn, g.Devices = nil, nil
	in.Auth.SetGuards(g)
}

// ProtectionOn puts the guards as Open wired them back.
func (in *Instance) ProtectionOn() { in.Auth.SetGuards(in.guards) }

// WaitTouches waits for the device touches written after sign-ins'
// answers, so that none runs into the next timed sign-in.
func (in *Instance) WaitTouches() { in.signIn.Wait() }
