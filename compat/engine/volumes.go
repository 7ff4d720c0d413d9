package engine

func (s *Server) volumeRoutes() {}
