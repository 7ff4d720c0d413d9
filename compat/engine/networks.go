package engine

func (s *Server) networkRoutes() {}

// cniNetwork is the cni.Manager network a docker network name stands for
// ("" is the default pod network, where docker's "bridge" is until it has
// a network of its own).
func (s *Server) cniNetwork(name string) (string, error) {
	return "", nil
}
