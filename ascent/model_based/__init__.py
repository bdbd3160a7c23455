"""Model-based methods and the cross-entropy method: Dyna-Q, Dyna-Q+ and prioritized sweeping (a
tabular model planned with, `dyna`); PETS and MBPO on a probabilistic ensemble of dynamics models
(`ensemble`; PETS plans through it with CEM, `pets`; MBPO trains SAC on its rollouts, `mbpo`); and
the cross-entropy method as policy search (`cem`)."""
